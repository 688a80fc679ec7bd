"""The coders' files, the precious data: no save can make one unreadable.

- a torn last line (a save cut off by a crash or a full disk, never acknowledged)
  is left out with a warning, listed by ``casebase check``, and moved to a side
  file by the next save, which then appends whole lines after it (F1);
- a write that fails (a full disk, a failing one) is cut back: the file is as it
  was, the save raises one error and the coding page does not say "Gemt" (F1),
  tested on a real full tmpfs where the machine allows mounting one;
- every note reads back exactly as written: a lone carriage return is quoted,
  control characters that a file does not keep are refused (F2);
- a note has a length limit that the writer enforces and the reader is well
  above (F3).
"""

import errno
import os
import re
import shutil
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from casebase.cli import cli
from casebase.coding import decision_files
from casebase.errors import CasebaseError
from casebase.publish import serving
from conftest import CORPUS, METADATA, REPO_CODEBOOK

EXCERPT = "bikuben2020pm-06fc21b5b2f4"


def decision(note="", coder="anna", excerpt=EXCERPT, codes=("outdoor",)):
    return decision_files.Decision(excerpt, "Et uddrag", list(codes), coder, "", "", note=note)


def check(corpus: Path):
    return CliRunner().invoke(cli, ["check", "--corpus", str(corpus), "--codebook", str(REPO_CODEBOOK)])


# --- F1: torn tails ------------------------------------------------------------------

def test_a_torn_last_line_is_reported_then_moved_aside_and_the_file_stays_readable(corpus_copy, built_db, caplog, tmp_path):
    coding = corpus_copy / "coding"
    path = coding / "coder1.csv"
    intact = path.read_bytes()
    torn = 'vive2021-abc,"Indsats: Walk and ta'.encode()
    path.write_bytes(intact + torn)
    torn_line = intact.count(b"\n") + 1

    result = check(corpus_copy)
    assert result.exit_code == 0, result.output
    assert f"torn  {path}:{torn_line}: an incomplete last row ({len(torn)} bytes" in result.stdout
    assert f"coder1.csv:{torn_line}: an incomplete last row" in caplog.text  # the log line (a server's stderr)

    # The next save (here: an import) moves the torn line aside and appends whole lines.
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(f'{{"excerpt_id": "{EXCERPT}", "codes": "outdoor", "note": "efter nedbruddet"}}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["import-decisions", str(jsonl), "--coder", "coder1", "--corpus", str(corpus_copy),
                                      "--codebook", str(REPO_CODEBOOK), "--db", str(built_db)])
    assert result.exit_code == 0, result.output
    (side,) = coding.glob("coder1.csv.torn-*")
    assert side.read_bytes() == torn  # kept, byte for byte, never dropped
    assert f"was moved to {side.name}" in caplog.text
    data = path.read_bytes()
    assert data.startswith(intact) and data.endswith(b",efter nedbruddet\n")
    rows = decision_files.read_file(path)
    assert rows[-1].note == "efter nedbruddet" and rows[-1].line == torn_line

    result = check(corpus_copy)
    assert result.exit_code == 0, result.output
    assert f"torn  {side}: {len(torn)} bytes of a save that was cut off, moved aside" in result.stdout


def test_a_file_that_is_only_a_torn_line_starts_again_with_its_header(tmp_path, book):
    path = tmp_path / "anna.csv"
    path.write_bytes(b"excerpt_id,snippet,co")  # the first save of all, cut off
    assert decision_files.read_file(path) == []
    (written,) = decision_files.append(tmp_path, [decision("første")], book)
    assert written.line == 2
    assert [d.note for d in decision_files.read_file(path)] == ["første"]
    (side,) = tmp_path.glob("anna.csv.torn-*")
    assert side.read_bytes() == b"excerpt_id,snippet,co"


def test_a_torn_registry_line_is_moved_aside_too(tmp_path, book):
    decision_files.append(tmp_path, [decision("a")], book)
    registry = tmp_path / decision_files.REGISTRY
    registry.write_bytes(registry.read_bytes() + b"abc123,outdo")
    assert book.version in decision_files.read_registry(tmp_path)
    decision_files.append(tmp_path, [decision("b")], book)
    assert list(tmp_path.glob("codebooks.csv.torn-*"))
    assert registry.read_bytes().endswith(b"\n")


# --- F1: failed writes ---------------------------------------------------------------

@pytest.mark.parametrize("failure", ["ENOSPC on write", "EIO on fsync"])
def test_a_write_that_fails_leaves_the_file_as_it_was(tmp_path, book, monkeypatch, failure):
    path = tmp_path / "anna.csv"
    decision_files.append(tmp_path, [decision("den første")], book)
    before = path.read_bytes()
    real_write, real_fsync = os.write, os.fsync

    def half_then_full(fd, data):
        # What a nearly full disk does: part of the row goes out, then ENOSPC.
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(path.resolve()):
            if len(data) > 10:
                return real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    def failing_fsync(fd):
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(path.resolve()):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_fsync(fd)

    with monkeypatch.context() as patch:
        if failure.startswith("ENOSPC"):
            patch.setattr(os, "write", half_then_full)
        else:
            patch.setattr(os, "fsync", failing_fsync)
        with pytest.raises(CasebaseError, match="nothing was saved") as error:
            decision_files.append(tmp_path, [decision("x" * 5000)], book)
    assert error.value.file == str(path)
    assert ("disk is full" if failure.startswith("ENOSPC") else "input/output error") in error.value.message
    assert path.read_bytes() == before
    (written,) = decision_files.append(tmp_path, [decision("efter")], book)
    assert [d.note for d in decision_files.read_file(path)] == ["den første", "efter"]
    assert written.line == 3 and not list(tmp_path.glob("*.torn-*"))


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KB tmpfs: a disk that really fills up (needs root and mount)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a small tmpfs needs root")
    target = tmp_path / "disk"
    target.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def fill(folder: Path) -> Path:
    filler = folder / f"filler-{uuid.uuid4().hex}"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\1" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_save_on_a_really_full_disk_is_refused_and_the_next_one_is_whole(small_disk, book):
    coding = small_disk / "coding"
    (first,) = decision_files.append(coding, [decision("før disken blev fuld")], book)
    path = coding / "anna.csv"
    before = path.read_bytes()
    filler = fill(small_disk)
    with pytest.raises(CasebaseError, match="disk is full.*as it was"):
        decision_files.append(coding, [decision("lang note " * 1500)], book)
    assert path.read_bytes() == before  # the part that got out was cut back
    filler.unlink()
    (after,) = decision_files.append(coding, [decision("efter oprydningen")], book)
    rows = decision_files.read_file(path)
    assert [d.note for d in rows] == ["før disken blev fuld", "efter oprydningen"]
    assert after.line == first.line + 1 and not list(coding.glob("*.torn-*"))


# --- F1: the coding page -------------------------------------------------------------

async def test_the_coding_page_never_says_saved_when_the_save_failed(coding_site, monkeypatch):
    from test_coding_web import codings_of, login

    root, settings = coding_site
    datasette = serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    cookies, token = await login(datasette)
    excerpt = "vive2021-d7647d1ca08f"
    path = root / "corpus" / "coding" / "anna.csv"
    before_codes = codings_of(root, excerpt)
    real_write = os.write

    def full(fd, data):
        if os.path.realpath(f"/proc/self/fd/{fd}") == str(path.resolve()):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    with monkeypatch.context() as patch:
        patch.setattr(os, "write", full)
        response = await datasette.client.post(
            f"/-/casebase/code/{excerpt}",
            data={"codes": ["walk_and_talk"], "note": "skrevet på en fuld disk", "csrftoken": token, "action": "save"},
            cookies=cookies,
        )
    assert response.status_code == 409 and "Intet er gemt" in response.text and "Gemt" not in response.text
    # The form comes back with the coder's ticks and note.
    assert "skrevet på en fuld disk" in response.text
    assert re.search(r'value="walk_and_talk"[^>]*checked', response.text)
    assert not path.exists() or decision_files.read_file(path) == []
    assert codings_of(root, excerpt) == before_codes
    # Space again: the same save goes through, whole.
    response = await datasette.client.post(
        f"/-/casebase/code/{excerpt}",
        data={"codes": ["walk_and_talk"], "note": "skrevet på en fuld disk", "csrftoken": token, "action": "save"},
        cookies=cookies,
    )
    assert response.status_code == 302 and "saved=1" in response.headers["location"]
    assert [d.note for d in decision_files.read_file(path)] == ["skrevet på en fuld disk"]


# --- saves do not read the file they append to -----------------------------------------


def test_a_save_reads_nothing_of_a_file_only_it_changed_and_counts_again_after_another_writer(tmp_path, book, monkeypatch):
    path = tmp_path / "anna.csv"
    first = decision_files.append(tmp_path, [decision("første")], book)[0]
    counted = []
    count = decision_files._count_line_ends
    monkeypatch.setattr(decision_files, "_count_line_ends", lambda fd, size: counted.append(size) or count(fd, size))
    # A long file (the server's own saves): each save after the first reads none of it.
    second = decision_files.append(tmp_path, [decision("linje 1\nlinje 2")], book)[0]
    third = decision_files.append(tmp_path, [decision("tredje")], book)[0]
    assert counted == []
    assert (first.line, second.line, third.line) == (2, 4, 5)
    # Another writer (an import in another process, an edit) changed the file: it is
    # counted again, and the torn line it left is moved aside as before.
    with open(path, "ab") as handle:
        handle.write(decision_files.csv_line([EXCERPT, "x", "outdoor", "anna", decision_files.now(), book.version, ""]).encode())
        handle.write(b"torn,row")
    fourth = decision_files.append(tmp_path, [decision("fjerde")], book)[0]
    assert len(counted) == 1
    assert list(tmp_path.glob("anna.csv.torn-*"))
    assert [d.line for d in decision_files.read_file(path)] == [2, 4, 5, 6, 7] and fourth.line == 7


# --- F2: notes read back exactly ------------------------------------------------------

KEPT = ["før\refter", "\r", "slut\r", "før\r\nefter", "før\nefter", "\r\r\n\n\r", "tab\there", 'citat "sådan", og komma',
        "linjeskift\u2028unicode", "æøå ÆØÅ é ü", "  mellemrum  "]


def test_every_note_reads_back_exactly_with_its_line(tmp_path, book):
    written = [decision_files.append(tmp_path, [decision(note)], book)[0] for note in KEPT]
    read = decision_files.read_file(tmp_path / "anna.csv")
    assert [d.note for d in read] == KEPT
    assert [d.line for d in read] == [d.line for d in written]  # what the server records is what it reads back


@pytest.mark.parametrize("note", ["før\x00efter", "\x1b[2J", "side\x0cskift", "slet\x7f", "næste linje\x85", "\x01"])
def test_control_characters_a_file_does_not_keep_are_refused(tmp_path, book, note):
    decision_files.append(tmp_path, [decision("før")], book)
    before = (tmp_path / "anna.csv").read_bytes()
    with pytest.raises(CasebaseError, match=r"control character U\+00"):
        decision_files.append(tmp_path, [decision(note)], book)
    assert (tmp_path / "anna.csv").read_bytes() == before


def test_a_lone_carriage_return_from_an_import_is_read_back_by_check(corpus_copy, built_db, tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(f'{{"excerpt_id": "{EXCERPT}", "codes": "outdoor", "note": "før\\refter"}}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["import-decisions", str(jsonl), "--coder", "anna", "--corpus", str(corpus_copy),
                                      "--codebook", str(REPO_CODEBOOK), "--db", str(built_db)])
    assert result.exit_code == 0, result.output
    assert decision_files.read_file(corpus_copy / "coding" / "anna.csv")[-1].note == "før\refter"
    result = check(corpus_copy)
    assert result.exit_code == 0, result.output
    assert "Error" not in result.output


async def test_a_lone_carriage_return_from_the_coding_page_is_read_back(coding_site):
    from test_coding_web import login

    root, settings = coding_site
    datasette = serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)
    cookies, token = await login(datasette)
    response = await datasette.client.post(
        "/-/casebase/code/vive2021-d7647d1ca08f",
        data={"codes": ["outdoor"], "note": "før\refter\r\nog så\rvidere", "csrftoken": token, "action": "save"},
        cookies=cookies,
    )
    assert response.status_code == 302 and "saved=1" in response.headers["location"]
    (row,) = decision_files.read_file(root / "corpus" / "coding" / "anna.csv")
    assert row.note == "før\refter\r\nog så\rvidere"
    assert check(root / "corpus").exit_code == 0


# --- F3: the note length limit --------------------------------------------------------

def test_a_note_at_the_limit_is_kept_and_one_over_is_refused(tmp_path, book):
    longest = "ord " * (decision_files.MAX_NOTE_CHARS // 4)
    assert len(longest) == decision_files.MAX_NOTE_CHARS
    decision_files.append(tmp_path, [decision(longest)], book)
    assert decision_files.read_file(tmp_path / "anna.csv")[0].note == longest
    before = (tmp_path / "anna.csv").read_bytes()
    with pytest.raises(CasebaseError, match="the longest a note may be is 20,000"):
        decision_files.append(tmp_path, [decision(longest + "x")], book)
    assert (tmp_path / "anna.csv").read_bytes() == before
    assert decision_files.READ_FIELD_LIMIT > decision_files.MAX_NOTE_CHARS * 4  # UTF-8, quotes doubled: room to spare


def test_a_note_over_csvs_default_field_limit_written_by_hand_is_read(corpus_copy):
    # A 200,000-character note (an old version wrote one; check and build crashed on it).
    path = corpus_copy / "coding" / "coder1.csv"
    first = path.read_text(encoding="utf-8").splitlines()[1]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(first.rsplit(",", 1)[0] + ',"' + "lang " * 40_000 + '"\n')
    result = check(corpus_copy)
    assert result.exit_code == 0, result.output
    assert len(decision_files.read_file(path)[-1].note) == 200_000
