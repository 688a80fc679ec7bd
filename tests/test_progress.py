"""A build's progress: the steps a build reports, the Danish line a terminal shows, the
JSON lines the coding server's retrain reads, and the retrain banner that follows them."""

import os
import re
import sqlite3
import subprocess
import sys
import time
import zipfile

from casebase.progress import Progress, Step, duration, number
from casebase.publish import retraining, serving
from conftest import METADATA, REPO_CODEBOOK
from test_coding_web import login


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_stage_with_a_total_estimates_the_time_left_from_its_pace():
    clock, steps = Clock(), []
    progress = Progress(steps.append, every=1.0, clock=clock)
    progress.start("code", total=1000)
    clock.now = 10.0
    progress.advance(250)
    clock.now = 10.5
    progress.advance(10)  # within a second of the last report: not reported
    clock.now = 20.0
    progress.advance(240)
    progress.end()
    assert [(s.done, s.left, s.finished) for s in steps] == [(0, None, False), (250, 30.0, False), (500, 20.0, False), (1000, 0.0, True)]
    assert steps[1].danish() == "Koder uddragene: 250 af 1.000 uddrag, ca. 30 s tilbage"
    assert steps[-1].danish() == "Koder uddragene: 1.000 uddrag, færdig på 20 s"


def test_a_stage_without_a_total_goes_by_its_share_and_a_new_stage_ends_the_last():
    clock, steps = Clock(), []
    progress = Progress(steps.append, every=0.0, clock=clock)
    progress.start("read")
    clock.now = 30.0
    progress.advance(1200, share=0.25)
    assert steps[-1].danish() == "Læser og analyserer teksterne: 1.200 uddrag (25 % af teksterne), ca. 1 min 30 s tilbage"
    progress.start("train")
    assert steps[-2].finished and steps[-2].stage == "read" and steps[-2].done == 1200
    assert steps[-1].danish() == "Træner modellen …"
    assert Step.from_json(steps[-1].json()) == steps[-1]
    assert Step.from_json("Error: something else") is None and Step.from_json('{"progress": 5}') is None


def test_numbers_and_durations_read_the_danish_way():
    assert number(1234567) == "1.234.567" and number(12) == "12"
    assert [duration(s) for s in (0.4, 59, 61, 3600 + 5 * 60 + 1)] == ["0 s", "59 s", "1 min 1 s", "1 t 5 min"]


def _casebase(*args, **run):
    streams = run or {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.run([sys.executable, "-m", "casebase", *map(str, args)], text=True, **streams)


def _build(corpus, db, *options, **run):
    return _casebase("build", "--corpus", corpus, "--codebook", REPO_CODEBOOK, "--db", db, *options, **run)


def test_build_reports_each_stage_as_json_lines(corpus_copy, tmp_path):
    result = _build(corpus_copy, tmp_path / "casebase.db", "--progress", "json")
    assert result.returncode == 0, result.stderr
    steps = [Step.from_json(line) for line in result.stderr.splitlines()]
    assert None not in steps and steps
    stages = [s.stage for s in steps if s.finished]
    assert stages == ["read", "train", "code", "store"]
    excerpts = sqlite3.connect(tmp_path / "casebase.db").execute("select count(*) from excerpts").fetchone()[0]
    for stage in stages:
        done = [s.done for s in steps if s.stage == stage]
        assert done == sorted(done), stage  # never goes back
    reading = [s for s in steps if s.stage == "read"]
    assert reading[-1].done == excerpts and all(0 <= (s.share or 0) <= 1 for s in reading)
    coding = [s for s in steps if s.stage == "code"]
    assert {s.total for s in coding} == {excerpts} and coding[-1].done == excerpts
    # The summary on stdout is unchanged, and nothing else was written to stderr.
    assert result.stdout.startswith(f"Built {tmp_path / 'casebase.db'}")


def _at_a_terminal(*args):
    """The command with stderr on a real terminal (a pseudo-terminal), as for a person who
    runs it: its exit code and the lines the terminal shows last on each row."""
    leader, follower = os.openpty()
    try:
        result = _casebase(*args, stdin=subprocess.DEVNULL, stderr=follower, stdout=subprocess.PIPE)
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: all is read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    rows = shown.decode("utf-8").split("\n")
    return result.returncode, [row.rstrip("\r").split("\r")[-1].replace("\x1b[K", "") for row in rows if row.strip()]


def test_at_a_terminal_the_build_shows_one_danish_line_per_stage(corpus_copy, tmp_path):
    returncode, lines = _at_a_terminal("build", "--corpus", corpus_copy, "--codebook", REPO_CODEBOOK, "--db", tmp_path / "casebase.db")
    assert returncode == 0
    assert [line.split(":")[0] for line in lines] == [
        "Læser og analyserer teksterne", "Træner modellen", "Koder uddragene", "Skriver databasen"]
    assert re.fullmatch(r"Koder uddragene: [\d.]+ uddrag, færdig på .+", lines[2])
    # Without a terminal (a pipe, a log) nothing is shown.
    assert _build(corpus_copy, tmp_path / "again.db").stderr == ""
    # A failed build's error starts a line of its own, after the stage it stopped in.
    (corpus_copy / "sources.yaml").write_text("sources: [ikke\n", encoding="utf-8")
    returncode, lines = _at_a_terminal("build", "--corpus", corpus_copy, "--codebook", REPO_CODEBOOK, "--db", tmp_path / "failed.db")
    assert returncode == 1 and lines[-1].startswith("Error: ") and "sources.yaml" in lines[-1]
    assert lines[-2].startswith("Læser og analyserer teksterne")


def _decisions_file(built_db, path, rows=40):
    ids = [r[0] for r in sqlite3.connect(built_db).execute("select id from excerpts order by position limit ?", [rows])]
    path.write_text("excerpt_id,codes,note\n" + "".join(f"{i},outdoor,\n" for i in ids), encoding="utf-8")
    return ids


def test_import_decisions_reports_the_rows_checked_and_written(built_db, corpus_copy, tmp_path):
    ids = _decisions_file(built_db, tmp_path / "d.csv")
    args = ["import-decisions", tmp_path / "d.csv", "--coder", "anna", "--corpus", corpus_copy, "--codebook", REPO_CODEBOOK, "--db", built_db]
    result = _casebase(*args, "--progress", "json")
    assert result.returncode == 0, result.stderr
    steps = [Step.from_json(line) for line in result.stderr.splitlines()]
    assert None not in steps
    assert [s.stage for s in steps if s.finished] == ["decisions", "append"]
    checked = [s for s in steps if s.stage == "decisions"]
    assert checked[-1].done == len(ids) and checked[-1].share == 1.0
    assert [s.done for s in checked] == sorted(s.done for s in checked)
    assert [s.total for s in steps if s.stage == "append"] == [len(ids), len(ids)]
    assert result.stdout.startswith(f"Appended {len(ids)} decisions")
    # At a terminal: one Danish line a stage.
    returncode, lines = _at_a_terminal(*args)
    assert returncode == 0
    assert re.fullmatch(r"Læser og kontrollerer beslutningerne: 40 rækker, færdig på \d+ s", lines[0]), lines
    assert re.fullmatch(r"Skriver beslutningerne: 40 beslutninger, færdig på \d+ s", lines[1]), lines
    # A bad row: the error on a line of its own after the stage it stopped in, nothing appended.
    before = (corpus_copy / "coding" / "anna.csv").read_bytes()
    with open(tmp_path / "d.csv", "a", encoding="utf-8") as handle:
        handle.write("no-such-excerpt,outdoor,\n")
    returncode, lines = _at_a_terminal(*args)
    assert returncode == 1 and lines[-1].startswith("Error: ") and "d.csv" in lines[-1] and "no-such-excerpt" in lines[-1]
    assert lines[-2].startswith("Læser og kontrollerer beslutningerne")
    assert (corpus_copy / "coding" / "anna.csv").read_bytes() == before


def test_import_qdpx_reports_reading_placing_and_writing(built_db, tmp_path):
    exported = tmp_path / "seed.qdpx"
    assert _casebase("export", "qdpx", exported, "--db", built_db).returncode == 0
    selections = sum(1 for line in zipfile.ZipFile(exported).read("project.qde").decode("utf-8").split("<PlainTextSelection ")[1:])
    corpus, book = tmp_path / "ny" / "corpus", tmp_path / "ny" / "codebook.yaml"
    result = _casebase("import", "qdpx", exported, "--corpus", corpus, "--codebook", book, "--progress", "json")
    assert result.returncode == 0, result.stderr
    steps = [Step.from_json(line) for line in result.stderr.splitlines()]
    assert None not in steps
    assert [s.stage for s in steps if s.finished] == ["project", "place", "corpus"]
    project = [s for s in steps if s.stage == "project"]
    assert project[-1].done == 6 and project[-1].share == 1.0  # the seed's six sources, the whole file parsed
    placed = [s for s in steps if s.stage == "place"]
    assert {s.total for s in placed} == {selections} and placed[-1].done == selections
    returncode, lines = _at_a_terminal("import", "qdpx", exported, "--corpus", tmp_path / "check", "--codebook", book, "--check")
    assert returncode == 0
    assert [line.split(":")[0] for line in lines[:2]] == ["Læser projektet", "Placerer kodningerne på uddragene"]
    assert lines[1] == f"Placerer kodningerne på uddragene: {number(selections)} markeringer, færdig på " + lines[1].rsplit("på ", 1)[1]


# A stand-in for 'casebase build --progress json': it reports the coding stage half
# done, then waits for the test to let it finish.
FAKE_BUILD = """
import json, pathlib, sys, time
step = {"stage": "code", "done": 10, "total": 20, "share": None, "seconds": 4.0, "left": 4.0, "finished": False}
print(json.dumps({"progress": step}), file=sys.stderr, flush=True)
print("a warning of the build's own", file=sys.stderr, flush=True)
while not pathlib.Path(sys.argv[1]).exists():
    time.sleep(0.05)
print("Built it")
"""


def _wait_for(condition, what):
    for _ in range(600):  # patience, not a timing assertion: the condition is what is tested
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def test_the_retrain_banner_follows_the_builds_progress(tmp_path):
    release = tmp_path / "release"
    retrain = retraining.Retraining(tmp_path / "corpus", tmp_path / "codebook.yaml", str(tmp_path / "casebase.db"))
    assert retrain.command[-2:] == ["--progress", "json"]
    retrain.command = [sys.executable, "-c", FAKE_BUILD, str(release)]
    assert retrain.start(by="anna")
    _wait_for(lambda: "progress" in retrain.status(), "the build's first step read")
    banner = retrain.banner({})
    assert banner["state"] == "running"
    assert "Koder uddragene: 10 af 20 uddrag, ca. 4 s tilbage." in banner["text"]
    release.touch()
    _wait_for(lambda: not retrain.status()["running"], "the build ended")
    status = retrain.status()
    assert status["ok"] and "progress" not in status["output"]
    assert status["output"] == "Built it\na warning of the build's own"


async def test_the_retrain_status_answers_coders_only(coding_site):
    root, settings = coding_site
    datasette = serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    assert (await datasette.client.get("/-/casebase/retrain/status")).status_code == 403
    cookies, _ = await login(datasette)
    status = await datasette.client.get("/-/casebase/retrain/status", cookies=cookies)
    assert status.status_code == 200 and status.json() == {"state": "", "text": "", "error": None}
    assert "no-store" in status.headers["cache-control"]
