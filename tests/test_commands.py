"""Every CLI command end to end, as a user runs it: on a copy of the real seed corpus,
its built database and model, through click's runner (and a real process for serve)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile

import openpyxl
import pytest
import sqlite_utils
from click.testing import CliRunner

from casebase.cli import cli
from conftest import CORPUS, METADATA, REPO_CODEBOOK


@pytest.fixture(scope="module")
def site(tmp_path_factory, built_db):
    """corpus/, codebook.yaml, metadata.yml and db/ (database, model, analysis cache) of a fresh build."""
    root = tmp_path_factory.mktemp("site")
    shutil.copytree(CORPUS, root / "corpus")
    shutil.copy(REPO_CODEBOOK, root / "codebook.yaml")
    shutil.copy(METADATA, root / "metadata.yml")
    shutil.copytree(built_db.parent, root / "db")
    return root


def run(site, *args, input=None):
    """A command run in the site's folder, as a user types it (default paths)."""
    cwd = os.getcwd()
    os.chdir(site)
    try:
        return CliRunner().invoke(cli, list(args), input=input)
    finally:
        os.chdir(cwd)


def ok(result):
    assert result.exit_code == 0, result.output + (result.stderr or "")
    return result.output


def test_build_then_up_to_date(site):
    output = ok(run(site, "build", "--force"))
    assert "Built db/casebase.db: 6 sources, 2324 excerpts" in output
    assert "Codings:" in output and "human decisions placed" in output
    assert "Up to date" in ok(run(site, "build"))


def test_check(site):
    output = ok(run(site, "check"))
    assert output.count(" excerpts ") == 6
    assert "human decisions placed" in output


def test_train_prints_a_row_per_code_and_keeps_the_database_current(site):
    output = ok(run(site, "train"))
    assert output.startswith("Trained run-")
    for code in ("digital_shift", "online_family_therapy", "to_go", "one_to_one", "outdoor", "walk_and_talk"):
        assert code in output
    assert "Up to date" in ok(run(site, "build"))
    run_id = output.split()[1]
    db = sqlite_utils.Database(site / "db" / "casebase.db")
    assert dict(db.execute("select key, value from build_info").fetchall())["model_run"] == run_id


def test_evaluate_prints_the_per_code_table_and_stores_it(site):
    output = ok(run(site, "evaluate"))
    lines = output.splitlines()
    assert lines[0].split()[:2] == ["code", "support"]
    assert any(l.startswith("macro") for l in lines)
    assert "5-fold cross-validation" in output
    db = sqlite_utils.Database(site / "db" / "casebase.db")
    systems = {r["system"] for r in db.query("select system from code_metrics")}
    assert {"model", "rules"} <= systems


def test_agreement(site):
    output = ok(run(site, "agreement"))
    assert "Krippendorff" in output or "alpha" in output
    assert "Stored" in output
    assert sqlite_utils.Database(site / "db" / "casebase.db")["agreement"].count > 0


def test_classify(site, tmp_path):
    texts = tmp_path / "svar.txt"
    texts.write_text("Vi holdt samtalerne på video.\nVi gik ture i skoven med borgerne.\n", encoding="utf-8")
    lines = [json.loads(l) for l in ok(run(site, "classify", str(texts))).splitlines()]
    assert len(lines) == 2
    assert "digital_shift" in lines[0]["codes"]
    assert "outdoor" in lines[1]["codes"]


def test_import_decisions_appends_and_refuses(site, tmp_path):
    db = sqlite_utils.Database(site / "db" / "casebase.db")
    excerpt = next(db.query("select id, text from excerpts where kind = 'paragraph' order by id limit 1"))
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"excerpt_id": excerpt["id"], "codes": "", "note": "Ingen kode"}) + "\n", encoding="utf-8")
    assert "Appended 1 decisions" in ok(run(site, "import-decisions", str(good), "--coder", "eva"))
    written = (site / "corpus" / "coding" / "eva.csv").read_text(encoding="utf-8")
    assert excerpt["id"] in written
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"excerpt_id": "no-such-excerpt", "codes": ""}) + "\n", encoding="utf-8")
    result = run(site, "import-decisions", str(bad), "--coder", "eva")
    assert result.exit_code == 1
    assert "bad.jsonl:1" in result.stderr and "unknown excerpt id" in result.stderr
    assert (site / "corpus" / "coding" / "eva.csv").read_text(encoding="utf-8") == written


def test_coders_add_list_remove(site):
    ok(run(site, "coders", "add", "frida", input="hemmelig-kode\nhemmelig-kode\n"))
    assert "frida" in ok(run(site, "coders", "list")).split()
    ok(run(site, "coders", "remove", "frida"))
    assert "frida" not in ok(run(site, "coders", "list")).split()
    stored = (site / "coders.json").read_text(encoding="utf-8")
    assert "hemmelig-kode" not in stored


def test_exports_and_qdc_import(site, tmp_path):
    assert "Wrote" in ok(run(site, "export", "qdpx", str(tmp_path / "p.qdpx")))
    with zipfile.ZipFile(tmp_path / "p.qdpx") as archive:
        assert "project.qde" in archive.namelist()
    assert "6 codes" in ok(run(site, "export", "qdc", str(tmp_path / "c.qdc")))
    ok(run(site, "export", "xlsx", str(tmp_path / "m.xlsx")))
    assert len(openpyxl.load_workbook(tmp_path / "m.xlsx").sheetnames) >= 3
    output = ok(run(site, "import", "qdc", str(tmp_path / "c.qdc"), "--output", str(tmp_path / "codebook.yaml")))
    assert "6 codes (6 kept their id, 0 new)" in output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_starts_and_answers(site, tmp_path):
    port = _free_port()
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "casebase", "serve", "--port", str(port)],
        cwd=site, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/casebase/excerpts.json?_size=1") as response:
                    body = json.loads(response.read())
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        else:
            pytest.fail("casebase serve did not answer: " + (tmp_path / "serve.log").read_text())
        assert body["rows"]
    finally:
        server.terminate()
        server.wait(timeout=30)

