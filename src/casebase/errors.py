"""The one exception type for errors a user can cause.

The CLI prints it as a single line (``file:line: message``) and exits non-zero;
it is never shown as a traceback.

What the machine causes (a full disk, a read-only folder, a path that is not
a folder) is a user's problem too: ``on_file`` turns those errors, and only
those, into a CasebaseError naming the file; a programming error stays a
traceback.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
from contextlib import contextmanager
from pathlib import Path

# An error line is read by a person: a value quoted into it (an entry of a
# YAML file, say) is cut off rather than printed whole, however big it is.
MAX_MESSAGE = 500

# The largest file casebase reads whole: a report's text, a workbook, a file to
# classify, a YAML file. A larger one is refused before it is read (a 1 GB sparse
# file, a disk image named .txt). Survey CSVs stream and have their own limit.
MAX_FILE_BYTES = 200 * 1024 * 1024


class CasebaseError(Exception):
    def __init__(self, message: str, file: str | Path | None = None, line: int | None = None):
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
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


# OSErrors that say something about the machine or the path a user gave, never
# about casebase's code: these become one line naming the file.
MACHINE_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the folder is on a read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "input/output error (a failing disk?)",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.EEXIST: "a file is in the way",
    errno.ENAMETOOLONG: "the name is too long",
    errno.ELOOP: "too many symbolic links",
    errno.EFBIG: "the file is too large for the file system",
    errno.ENXIO: "no such device",
}

# Of those, the ones no code path of casebase's own can cause: a long block of
# work (a whole build) is wrapped for these alone, so a bug in it that opens a
# wrong path still shows as the bug it is.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}

# sqlite3 says what went wrong only in words; these are the machine's, not SQL's.
SQLITE_MACHINE_MESSAGES = (
    "database or disk is full",
    "unable to open database file",
    "attempt to write a readonly database",
    "disk I/O error",
    "readonly database",
)


def machine_error(
    exc: BaseException, file: str | Path, doing: str = "write", name_part: bool = True, storage_only: bool = False
) -> CasebaseError | None:
    """The CasebaseError for an error the machine caused while casebase worked on
    ``file``, or None when ``exc`` is not one (a bug stays a bug). ``name_part``:
    name the path the system call failed on when it is another (a parent folder).
    ``storage_only``: only a full, read-only, forbidden or failing disk."""
    if isinstance(exc, OSError) and exc.errno in (STORAGE_ERRNOS if storage_only else MACHINE_ERRNOS):
        where = exc.filename if name_part and exc.filename and str(exc.filename) != str(file) else None
        detail = MACHINE_ERRNOS[exc.errno] + (f" ({where})" if where else "")
        return CasebaseError(f"cannot {doing}: {detail}", file=file)
    if isinstance(exc, sqlite3.OperationalError) and any(m in str(exc) for m in SQLITE_MACHINE_MESSAGES):
        return CasebaseError(f"cannot {doing}: {exc}", file=file)
    return None


@contextmanager
def on_file(path: str | Path, doing: str = "write", name_part: bool = True, storage_only: bool = False):
    """Run a block that writes (or reads: ``doing``) ``path``; a full disk, a read-only
    folder or a path that is no folder becomes one CasebaseError naming ``path``
    (with ``storage_only``, only the disk's errors: see STORAGE_ERRNOS)."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as exc:
        error = machine_error(exc, path, doing, name_part, storage_only)
        if error is None:
            raise
        raise error from None


def open_regular(path: str | Path, limit: int | None = MAX_FILE_BYTES):
    """Open a file a user pointed casebase at for reading (binary), refusing what is
    not a regular file (a FIFO would block for ever, /dev/zero never ends) and a
    file larger than ``limit`` bytes, before anything is read."""
    path = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise CasebaseError("file not found", file=path) from None
    except IsADirectoryError:
        raise CasebaseError("is a folder, not a file", file=path) from None
    except OSError as exc:
        raise CasebaseError(f"cannot read file: {exc.strerror}", file=path) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise CasebaseError("is a folder, not a file", file=path)
        if not stat.S_ISREG(info.st_mode):
            raise CasebaseError("not a regular file (a pipe, a device or a socket); give a file", file=path)
        if limit is not None and info.st_size > limit:
            raise CasebaseError(
                f"file of {info.st_size:,} bytes; the largest casebase reads is {limit:,} bytes", file=path
            )
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path, limit: int | None = MAX_FILE_BYTES) -> bytes:
    """A file a user pointed casebase at; a missing, unreadable, special or too
    large one is a CasebaseError."""
    path = Path(path)
    with open_regular(path, limit) as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise CasebaseError(f"cannot read file: {exc.strerror}", file=path) from None
