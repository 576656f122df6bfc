"""Run the command line in-process and check that it failed cleanly: exit 2, one line, no traceback."""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from pathlib import Path

from typer.testing import CliRunner

from qnnlab.cli import app


def fails_cleanly(args: Sequence[str | Path], names: str) -> str:
    """Run ``qnnlab ARGS``; assert exit status 2 and one line of output, ``error: …`` containing ``names``.

    Returns the line. An exception that escaped the command fails the assertion with its traceback.
    """
    result = CliRunner().invoke(app, [str(a) for a in args])
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not escaped, "".join(traceback.format_exception(result.exception))
    lines = result.output.splitlines()
    assert result.exit_code == 2 and len(lines) == 1, f"exit {result.exit_code}:\n{result.output}"
    assert lines[0].startswith("error: ") and names in lines[0], lines[0]
    return lines[0]
