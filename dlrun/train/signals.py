"""Ctrl-C and SIGTERM become a polite request: the loop stops between steps and the run is saved."""

from __future__ import annotations

import signal
import threading


class StopOnSignal:
    """While active, SIGINT/SIGTERM set `signum` instead of killing the process mid-step.

    A second Ctrl-C falls through to Python's default behaviour, so a stuck run can
    still be broken out of.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
