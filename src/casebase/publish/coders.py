"""Coder accounts for ``casebase serve --coding``.

Only a salted PBKDF2 hash of each password is stored, in a git-ignored JSON
file (``coders.json`` by default) that also holds the secret Datasette signs
its login cookies with, so a coder stays logged in across server restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from casebase.coding.decision_files import coder_file
from casebase.errors import CasebaseError

ITERATIONS = 600_000  # PBKDF2-HMAC-SHA256, OWASP's recommendation (2023)


def _read(path: Path) -> dict:
    path = Path(path)
    if not path.exists():
        return {"secret": "", "coders": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CasebaseError(f"not a valid coders file ({exc})", file=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("coders"), dict):
        raise CasebaseError("not a valid coders file (expected an object with 'coders')", file=path)
    data.setdefault("secret", "")
    return data


def _write(path: Path, data: dict) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    # Created 0600 from the start: the hashes and the cookie secret are nobody else's business.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _hash(password: str, salt: bytes, iterations: int) -> str:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations).hex()


def add(path: Path, name: str, password: str, adjudicator: bool | None = None) -> None:
    """Add a coder, or set a new password (and role) for an existing one. An
    adjudicator also rules on excerpts where coders disagree."""
    coder_file(Path("."), name)  # the same id rule as the coder's CSV file name
    if len(password) < 8:
        raise CasebaseError("the password must have at least 8 characters", file=path)
    data = _read(path)
    if adjudicator is None:  # a new password keeps the role the coder had
        adjudicator = "adjudicator" in (data["coders"].get(name) or {}).get("roles", [])
    salt = secrets.token_bytes(16)
    data["coders"][name] = {
        "salt": salt.hex(),
        "iterations": ITERATIONS,
        "hash": _hash(password, salt, ITERATIONS),
        "roles": ["adjudicator"] if adjudicator else [],
    }
    if not data["secret"]:
        data["secret"] = secrets.token_hex(32)
    _write(path, data)


def remove(path: Path, name: str) -> None:
    data = _read(path)
    if name not in data["coders"]:
        raise CasebaseError(f"no coder {name!r}", file=path)
    del data["coders"][name]
    _write(path, data)


def names(path: Path) -> list[str]:
    return sorted(_read(path)["coders"])


def is_adjudicator(path: Path, name: str) -> bool:
    return "adjudicator" in (_read(path)["coders"].get(name) or {}).get("roles", [])


def verify(path: Path, name: str, password: str) -> bool:
    entry = _read(path)["coders"].get(name)
    if not entry:
        # Hash anyway so an unknown name takes as long as a wrong password.
        _hash(password, b"casebase-no-such-coder", ITERATIONS)
        return False
    expected = _hash(password, bytes.fromhex(entry["salt"]), int(entry["iterations"]))
    return hmac.compare_digest(expected, entry["hash"])


def secret(path: Path) -> str | None:
    return _read(path)["secret"] or None
