"""The stop flow both front-ends share: SIGINT/SIGTERM set a flag that the training loop checks between steps, so
an update is never cut in half; the loop then finishes (final evaluation unless interrupted, checkpoint) and the
process exits with 130 if it was interrupted (0 otherwise)."""
from __future__ import annotations

import signal
from typing import Any

EXIT_INTERRUPTED = 130


class StopFlag:
    """``with StopFlag() as flag: while not flag.stop: ...``. The first SIGINT/SIGTERM sets ``stop``; a second
    SIGINT aborts with KeyboardInterrupt. Outside the main thread no handler is installed (the flag stays False)."""

    def __init__(self) -> None:
        self.stop = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "StopFlag":
        def handler(signum, frame):
            if self.stop and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.stop = True
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, handler)
        except ValueError:  # not in the main thread: no signal handling
            pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    @property
    def exit_code(self) -> int:
        return EXIT_INTERRUPTED if self.stop else 0
