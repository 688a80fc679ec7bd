"""Three coders saving at once on a real coding server, through a `kill -9` of the server
and a retrain: every save the server acknowledged is in the coder's file and served."""

import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import httpx

import browser
from casebase.coding import decision_files
from casebase.publish import coders, serving
from conftest import METADATA, PASSWORDS

SAVES = 300
PASSWORD = {**PASSWORDS, "cai": "cai-koder-333"}


class Coder(threading.Thread):
    """One coder saving one excerpt after another until told to stop or the server
    goes away; keeps the excerpts whose save was acknowledged ("Gemt": a redirect)."""

    def __init__(self, base, name, excerpts, acknowledged):
        super().__init__(daemon=True)
        self.base, self.name, self.excerpts, self.acknowledged = base, name, excerpts, acknowledged
        self.done = 0
        self.failure = None

    def run(self):
        try:
            with httpx.Client(base_url=self.base, timeout=120) as client:
                page = client.get("/-/casebase/login")
                token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
                client.post("/-/casebase/login", data={"name": self.name, "password": PASSWORD[self.name], "csrftoken": token})
                for i, excerpt in enumerate(self.excerpts):
                    codes = ["outdoor"] if i % 2 else ["to_go"]
                    answer = client.post(f"/-/casebase/code/{excerpt}", data={"codes": codes, "csrftoken": token, "action": "save"})
                    if answer.status_code != 302 or "saved=1" not in answer.headers.get("location", ""):
                        self.failure = (excerpt, answer.status_code, answer.text[:300])
                        return
                    self.acknowledged.append((self.name, excerpt))
                    self.done = i + 1
        except httpx.TransportError:
            return  # the server was killed: whatever was acknowledged so far must hold


def _walk(base, todo, acknowledged):
    walkers = [Coder(base, name, items, acknowledged) for name, items in todo.items()]
    for walker in walkers:
        walker.start()
    return walkers


def test_three_coders_save_through_a_kill_and_a_retrain_and_lose_nothing(coding_site):
    root, settings = coding_site
    coders.add(settings.coders, "cai", PASSWORD["cai"])
    build = root / "db" / "casebase.db"
    conn = sqlite3.connect(build)
    ids = [r[0] for r in conn.execute("select id from excerpts where kind = 'paragraph' order by position limit ?", [3 * SAVES])]
    conn.close()
    todo = {name: ids[k * SAVES:(k + 1) * SAVES] for k, name in enumerate(("anna", "bo", "cai"))}
    acknowledged = []
    args = ["--coding", "--db", str(build), "--corpus", str(settings.corpus), "--codebook", str(settings.codebook),
            "--coders", str(settings.coders), "--metadata", str(METADATA)]
    port = browser.free_port()

    # First: all three save; the server is killed with -9 in the middle of it.
    with browser.server_process(*args, port=port) as (base, process):
        walkers = _walk(base, {name: items[:SAVES // 2] for name, items in todo.items()}, acknowledged)
        while len(acknowledged) < SAVES // 2 and any(w.is_alive() for w in walkers):
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        for walker in walkers:
            walker.join()
            assert walker.failure is None, walker.failure
    assert 0 < len(acknowledged) < 3 * SAVES // 2

    # Then: a restart; the coders go on where their last acknowledged save was (a save
    # the kill cut off is made again), and one of them retrains meanwhile.
    with browser.server_process(*args, port=port) as (base, process):
        saved = {(name, excerpt) for name, excerpt in acknowledged}
        rest = {name: [e for e in items if (name, e) not in saved] for name, items in todo.items()}
        with httpx.Client(base_url=base, timeout=120) as client:
            old_built = client.get("/casebase/build_info.json", params={"key": "built_at", "_shape": "array"}).json()[0]["value"]
            walkers = _walk(base, rest, acknowledged)
            page = client.get("/-/casebase/login")
            token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
            client.post("/-/casebase/login", data={"name": "anna", "password": PASSWORD["anna"], "csrftoken": token})
            assert client.post("/-/casebase/retrain", data={"csrftoken": token}).status_code == 302
            for walker in walkers:
                walker.join()
                assert walker.failure is None, walker.failure
            for _ in range(1200):  # the retrain, served (at most ten minutes)
                built = client.get("/casebase/build_info.json", params={"key": "built_at", "_shape": "array"}).json()[0]["value"]
                if built != old_built:
                    break
                time.sleep(0.5)
            else:
                raise AssertionError("the retrain was never served")
    assert {(n, e) for n, e in acknowledged} == {(n, e) for n, items in todo.items() for e in items}

    # Every acknowledged save is in its coder's file, the files read back whole, and
    # after one more start the served database holds every one of them.
    in_files = {(d.coder, d.excerpt_id) for d in decision_files.read_all(settings.coding_dir)}
    lost = {(n, e) for n, e in acknowledged} - in_files
    assert lost == set()
    check = subprocess.run([sys.executable, "-m", "casebase", "check", "--corpus", str(settings.corpus),
                            "--codebook", str(settings.codebook)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    serving.make_datasette(build, METADATA, settings)
    served = sqlite3.connect(serving.working_copy(build))
    held = set(served.execute("select coder, excerpt_id from decisions where coder in ('anna', 'bo', 'cai')").fetchall())
    served.close()
    assert {(n, e) for n, e in acknowledged} - held == set()
