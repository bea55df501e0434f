"""dlrun.log: what the terminal showed during a run, kept in its run directory.

While a job runs, stdout and stderr go to the terminal as before and, through `ScreenLog`,
to `<run dir>/dlrun.log`: the result table, warnings, the diagnosis panel, errors. A live
progress bar redraws itself with carriage returns and cursor movements; the log keeps only
what stayed on the screen, as plain text without colour codes. (A terminal emulator such as
pyte would do this too, but all dlrun's output needs is the few moves rich's live display
makes: carriage return, cursor up, erase line.)
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

LOG_NAME = "dlrun.log"
_ESCAPE = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\x1b\][^\x07]*\x07|[\r\n]|[^\x1b\r\n]+")
_KEPT = 64  # lines a redraw may still move up into (taller than any live display)


class ScreenLog:
    """The lines a terminal would end up showing, written to a file once no redraw can reach them."""

    def __init__(self, path: Path):
        self.path, self.file = path, None  # opened at the first line written
        self.lines: list[str] = []
        self.current = ""
        self.discarded = False

    def _append(self, lines: list[str]) -> None:
        if self.discarded or not lines:
            return
        if self.file is None:
            self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115  closed by close()
        self.file.write("".join(line + "\n" for line in lines))
        self.file.flush()

    def discard(self) -> None:
        """Write nothing more (a refused resume leaves its run's files as they were)."""
        self.discarded = True

    def write(self, text: str) -> None:
        for match in _ESCAPE.finditer(text):
            piece, code = match.group(0), match.group(2)
            if piece == "\n":
                self.lines.append(self.current.rstrip())
                self.current = ""
            elif piece == "\r" or code == "K":  # back to the line's start, or the line erased
                self.current = ""
            elif code == "A":  # cursor up n lines: those lines will be drawn again
                for _ in range(int(match.group(1) or 1)):
                    self.current = self.lines.pop() if self.lines else ""
            elif not piece.startswith("\x1b"):
                self.current += piece
        if len(self.lines) > _KEPT:
            done, self.lines = self.lines[:-_KEPT], self.lines[-_KEPT:]
            self._append(done)

    def flush(self) -> None:
        """Nothing to do: lines reach the file once no redraw can reach them."""

    def close(self) -> None:
        self._append(self.lines + ([self.current.rstrip()] if self.current.strip() else []))
        if self.file is not None:
            self.file.close()


class _Tee:
    """A stream that writes to the terminal's stream and to the screen log."""

    def __init__(self, stream, log: ScreenLog):
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.log.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:  # rich asks: a live bar on a terminal, plain lines elsewhere
        return self.stream.isatty()

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


@contextlib.contextmanager
def logged_to(run_dir: Path) -> Iterator[ScreenLog]:
    """Copy what stdout and stderr show into `run_dir`/dlrun.log (appended: a resumed run
    adds its part), until the block ends."""
    log = ScreenLog(Path(run_dir) / LOG_NAME)
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(out, log), _Tee(err, log)
    try:
        yield log
    finally:
        sys.stdout, sys.stderr = out, err
        log.close()
