"""SIGTERM and SIGHUP stop a run as Ctrl-C (SIGINT) does.

``timeout``, ``docker stop`` and Slurm preemption send SIGTERM; a closed terminal sends
SIGHUP. Inside :func:`terminate_as_interrupt` each raises :class:`Interrupted` (a
``KeyboardInterrupt``) in the main thread, so the training loop unwinds the same way: the run
is marked ``interrupted`` in the store, its last checkpoint stays, and ``--resume`` continues
it. Outside the main thread (where Python cannot install handlers) nothing changes.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Interrupted", "terminate_as_interrupt"]

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal; ``signal`` is its name (``"SIGTERM"``)."""

    def __init__(self, signum: int) -> None:
        self.signal = signal.Signals(signum).name
        super().__init__(self.signal)


def _raise(signum: int, frame: object) -> None:
    raise Interrupted(signum)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Interrupted`; the previous handlers come back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
