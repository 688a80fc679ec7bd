"""The retrain's build process started ahead of time (``retraining.WarmBuild``): the coding
server hands the build to it, replaces it afterwards, never trusts one that died or was
started on other code, and leaves none behind when it is killed."""

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

import browser
from casebase.coding import codebook, decision_files
from casebase.publish import retraining
from conftest import coding_server_args
from test_serving import _log_in, _value

WARM = "casebase.publish.warm_build"


def _children(pid: int, marker: str = WARM) -> set[int]:
    """Processes whose parent is ``pid`` and whose command line holds ``marker`` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        state = stat.rsplit(")", 1)[1].split()[0]
        if parent == pid and state != "Z" and marker in command:
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, what: str, seconds: float = 300):
    for _ in range(int(seconds * 10)):
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"waited {seconds} s for {what}")


def _decide(site: Path, settings, excerpt_id: str, text: str) -> None:
    """A coder's decision ("none of the codes"), appended as the coding pages write it."""
    book = codebook.load(settings.codebook)
    decision = decision_files.Decision(excerpt_id, decision_files.snippet_of(text), [], "anna", "", "", note="warm")
    decision_files.append(settings.corpus / "coding", [decision], book)


def _uncoded(site: Path) -> tuple[str, str]:
    import sqlite3

    conn = sqlite3.connect(site / "db" / "casebase.db")
    try:
        return conn.execute(
            "select id, text from excerpts where kind = 'paragraph' and id not in "
            "(select excerpt_id from decisions where excerpt_id is not null) order by id limit 1"
        ).fetchone()
    finally:
        conn.close()


def test_the_coding_server_retrains_in_its_warm_process_and_leaves_none_when_killed(coding_site):
    site, settings = coding_site
    with browser.server_process(*coding_server_args(site, settings)) as (base, server), \
            httpx.Client(base_url=base, timeout=120) as client:
        warm, = _wait_for(lambda: _children(server.pid), "the warm build process")
        token = _log_in(client, "anna")
        excerpt, _ = _uncoded(site)
        saved = client.post(f"/-/casebase/code/{excerpt}", data={"codes": ["outdoor"], "csrftoken": token})
        assert saved.status_code == 302
        old_run = _value(client, "model_run")
        assert client.post("/-/casebase/retrain", data={"csrftoken": token, "next": "/-/casebase/queue"}).status_code == 302
        status = _wait_for(lambda: (s := client.get("/-/casebase/retrain/status").json())["state"] not in ("running", "waiting") and s,
                           "the retrain to end")
        assert status["state"] == "served" and not status["error"]
        assert _value(client, "model_run") != old_run
        # The warm process ran that build and ended; a new one waits for the next.
        assert not _alive(warm)
        successor, = _wait_for(lambda: _children(server.pid), "the next warm build process")
        assert successor != warm
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
        # Its end of the pipe closed, the waiting process exits even mid-import.
        _wait_for(lambda: not _alive(successor), "the orphaned warm process to exit", seconds=60)


@pytest.fixture
def retrain(coding_site):
    site, settings = coding_site
    process = retraining.Retraining(settings.corpus, settings.codebook, str(site / "db" / "casebase.db"))
    yield site, settings, process
    process.close()


def _finished(process: retraining.Retraining) -> dict:
    return _wait_for(lambda: (s := process.status()) and not s["running"] and s, "the build to end")


def test_a_warm_build_is_the_same_build_and_the_next_is_warmed_after_it(retrain):
    site, settings, process = retrain
    process.keep_warm()
    first = process._warm.process
    _decide(site, settings, *_uncoded(site))
    assert process.start(by="anna")
    status = _finished(process)
    assert status["warm"] and status["ok"] and not status["unchanged"], status.get("output")
    assert "(retrained)" in status["output"] and status["progress"].finished
    assert first.poll() == 0
    assert process._warm is not None and process._warm.process.poll() is None
    # Nothing changed since: the warm process says so as 'casebase build' does.
    assert process.start(by="anna")
    status = _finished(process)
    assert status["warm"] and status["unchanged"] and status["output"].startswith(retraining.UP_TO_DATE)


def test_a_dead_warm_process_is_replaced_by_a_fresh_build(retrain):
    site, settings, process = retrain
    process.keep_warm()
    dead = process._warm.process
    os.kill(dead.pid, signal.SIGKILL)
    dead.wait()
    _decide(site, settings, *_uncoded(site))
    assert process.start(by="anna")
    status = _finished(process)
    assert not status["warm"] and status["ok"] and "(retrained)" in status["output"]
    assert process._warm.process is not dead and process._warm.process.poll() is None


def test_a_warm_process_started_on_other_code_is_not_used(retrain, monkeypatch):
    site, settings, process = retrain
    process.keep_warm()
    stale = process._warm.process
    monkeypatch.setattr(retraining, "code_state", lambda: "casebase or a package changed since")
    assert process.start(by="anna")
    status = _finished(process)
    assert not status["warm"] and status["ok"]
    assert stale.poll() is not None  # ended, not left waiting
    assert process._warm.started_on == "casebase or a package changed since"


def test_a_server_without_warming_builds_as_before_and_close_ends_the_waiting_process(retrain):
    site, settings, process = retrain
    assert process.start(by="anna")
    status = _finished(process)
    assert not status["warm"] and status["ok"] and process._warm is None
    process.keep_warm()
    waiting = process._warm.process
    process.close()
    assert waiting.poll() is not None and process._warm is None
