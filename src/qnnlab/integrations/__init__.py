"""Bridges to other training frameworks, each an optional extra: :mod:`qnnlab.integrations.lightning`."""
