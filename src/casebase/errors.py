"""The one exception type for errors a user can cause.

The CLI prints it as a single line (``file:line: message``) and exits non-zero;
it is never shown as a traceback.
"""

from __future__ import annotations

from pathlib import Path


class CasebaseError(Exception):
    def __init__(self, message: str, file: str | Path | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
            where += ": "
        return f"{where}{self.message}"


def read_bytes(path) -> bytes:
    """A file a user pointed casebase at; a missing or unreadable one is a CasebaseError."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CasebaseError("file not found", file=path) from None
    except OSError as exc:
        raise CasebaseError(f"cannot read file: {exc.strerror}", file=path) from None
