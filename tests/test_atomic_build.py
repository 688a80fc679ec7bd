"""A build killed with SIGKILL at any stage leaves the previous database intact,
and the next build succeeds. Real subprocesses, real kills; the kill points are
stages the build reaches (files it creates), plus seeded random delays. No
assertion depends on timing."""

import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CORPUS, REPO


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table' and name not like 'excerpts_fts%'")]
        return {t: conn.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


def built_at(path: Path) -> str:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("select value from build_info where key = 'built_at'").fetchone()[0]
    finally:
        conn.close()


def start_build(site: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.Popen(
        [sys.executable, "-m", "casebase", "build", "--force", "--corpus", str(CORPUS),
         "--codebook", str(REPO / "codebook.yaml"), "--db", str(site / "casebase.db")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def wait_for(process: subprocess.Popen, condition, limit: float = 120) -> bool:
    """Poll until ``condition()`` holds (True) or the build ends by itself (False)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def temp_db(site: Path, size: int = 0):
    def found() -> bool:
        return any(p.stat().st_size > size for p in site.glob(".casebase.db.*.tmp") if p.exists())

    return found


KILL_POINTS = {
    "while importing": lambda site: (lambda: True),
    "while analysing (cache opened)": lambda site: (lambda: (site / "cache" / "analysis.sqlite").exists()),
    "store stage begun": lambda site: temp_db(site),
    "store stage half-way": lambda site: temp_db(site, 2_000_000),
}


@pytest.fixture
def site(tmp_path, built_db):
    """The previous build: the seed database and its model, no caches."""
    site = tmp_path / "db"
    site.mkdir()
    shutil.copy(built_db, site / "casebase.db")
    if (built_db.parent / "models").exists():
        shutil.copytree(built_db.parent / "models", site / "models")
    return site


def kill_and_check(site: Path, process: subprocess.Popen, reached: bool, before_digest: str, before_counts: dict, before_built_at: str) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    process.stderr.close()
    if not reached and process.returncode == 0:
        pytest.skip("the build finished before the kill point")  # a fast machine; nothing to test here
    assert process.returncode == -signal.SIGKILL
    if digest(site / "casebase.db") != before_digest:
        # Killed after its rename (while the process was exiting): then the file
        # must be the new build, complete, never a mix or a half-written one.
        assert built_at(site / "casebase.db") > before_built_at
    assert counts(site / "casebase.db") == before_counts


def test_killed_builds_leave_the_previous_database_and_the_next_build_succeeds(site):
    before_digest, before_counts = digest(site / "casebase.db"), counts(site / "casebase.db")
    before_built_at = built_at(site / "casebase.db")
    rng = random.Random(20260)
    points = list(KILL_POINTS.items()) + [(f"after {d:.1f} s", None) for d in (rng.uniform(0.5, 6) for _ in range(2))]
    for name, make_condition in points:
        process = start_build(site)
        if make_condition is None:
            delay = float(name.split()[1])
            reached = not wait_for(process, lambda: False, limit=delay) and process.poll() is None
        else:
            reached = wait_for(process, make_condition(site))
        if process.poll() is not None and process.returncode == 0:
            # Finished before the kill point: that build is the new previous one.
            process.stdout.close()
            process.stderr.close()
            before_digest, before_counts = digest(site / "casebase.db"), counts(site / "casebase.db")
            before_built_at = built_at(site / "casebase.db")
            continue
        kill_and_check(site, process, reached, before_digest, before_counts, before_built_at)
        before_digest, before_built_at = digest(site / "casebase.db"), built_at(site / "casebase.db")

    process = start_build(site)
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err.decode()
    assert b"Built " in out
    after = counts(site / "casebase.db")
    assert after["excerpts"] == before_counts["excerpts"] and after["codings"] > 0
    # The killed builds' temporary databases are gone; nothing but the build's own files remain.
    assert not list(site.glob(".casebase.db.*.tmp"))
    assert {p.name for p in site.iterdir()} <= {"casebase.db", "models", "cache"}
