"""The servers under attack: forged writes, redirects off-site, password guessing, and
the SQL a visitor may type."""

import logging
import re
import shutil

import pytest

from casebase.coding import decision_files
from casebase.publish import serving
from casebase.publish.web import login as login_module
from conftest import METADATA, PASSWORDS

EXCERPT = "vive2021-d7647d1ca08f"


@pytest.fixture
def coding(coding_site):
    root, settings = coding_site
    return root, settings, serving.make_datasette(root / "db" / "casebase.db", METADATA, settings)


async def _form(datasette):
    page = await datasette.client.get("/-/casebase/login")
    token = re.search(r'name="csrftoken" value="([^"]+)"', page.text).group(1)
    return token, {"ds_csrftoken": page.cookies["ds_csrftoken"]}


async def _log_in(datasette, name="anna", password=None, **extra):
    token, cookies = await _form(datasette)
    answer = await datasette.client.post(
        "/-/casebase/login",
        data={"name": name, "password": password or PASSWORDS[name], "csrftoken": token, **extra},
        cookies=cookies,
    )
    return answer, token, {**cookies, **({"ds_actor": answer.cookies["ds_actor"]} if "ds_actor" in answer.cookies else {})}


def _rows(settings, coder="anna"):
    path = settings.coding_dir / f"{coder}.csv"
    return decision_files.read_file(path) if path.exists() else []


async def test_a_bearer_header_does_not_skip_the_csrf_check(coding):
    _, settings, datasette = coding
    _, _, cookies = await _log_in(datasette)
    for path, data in ((f"/-/casebase/code/{EXCERPT}", {"codes": ["to_go"], "action": "save"}),
                       ("/-/casebase/retrain", {"next": "/-/casebase/queue"})):
        answer = await datasette.client.post(path, data=data, cookies=cookies, headers={"Authorization": "Bearer x"})
        assert answer.status_code == 403, path
        # The refusal speaks Danish, not asgi-csrf's "form-urlencoded POST field did not match cookie".
        assert "sikkerhedsnøgle" in answer.text and "did not match" not in answer.text, path
    assert _rows(settings) == []
    assert not serving.server_state(datasette).retraining.status()


async def test_a_write_without_cookies_is_refused(coding):
    _, _, datasette = coding
    answer = await datasette.client.post("/-/casebase/login", data={"name": "anna", "password": PASSWORDS["anna"]})
    assert answer.status_code == 403 and "ds_actor" not in answer.cookies
    assert answer.headers["content-type"].startswith("text/html") and "Afvist" in answer.text
    # The same login with the form's token and its cookie is let in.
    answer, _, cookies = await _log_in(datasette)
    assert answer.status_code == 302 and "ds_actor" in cookies


@pytest.mark.parametrize(
    "target",
    ["/\\evil.example/landing", "//evil.example", "/\t/evil.example", "https://evil.example/", "/\\/evil.example",
     "javascript:alert(1)", "/\r\nLocation: x"],
)
async def test_login_never_redirects_off_site(coding, target):
    _, _, datasette = coding
    answer, _, _ = await _log_in(datasette, next=target)
    assert answer.status_code == 302 and answer.headers["location"] == "/"


async def test_login_keeps_a_path_on_this_site(coding):
    _, _, datasette = coding
    answer, _, _ = await _log_in(datasette, next="/-/casebase/queue?queue=uncertain&code=outdoor")
    assert answer.headers["location"] == "/-/casebase/queue?queue=uncertain&code=outdoor"


async def test_guessing_a_password_is_slowed_and_logged(coding, caplog):
    _, _, datasette = coding
    caplog.set_level(logging.WARNING, logger="casebase.login")
    for _ in range(login_module.FREE_FAILURES["coder"]):
        answer, _, _ = await _log_in(datasette, password="forkert-kode")
        assert answer.status_code == 403
    assert sum("failed login for 'anna'" in r.getMessage() for r in caplog.records) == login_module.FREE_FAILURES["coder"]
    # Now even the right password waits: refused without being checked.
    answer, _, cookies = await _log_in(datasette)
    assert answer.status_code == 429 and "ds_actor" not in cookies and "For mange forkerte forsøg" in answer.text
    # Another coder from another account is not locked out by anna's failures.
    answer, _, cookies = await _log_in(datasette, name="bo")
    assert answer.status_code == 302


def test_the_back_off_doubles_and_ends():
    now = [1000.0]
    guard = login_module.LoginThrottle(clock=lambda: now[0])
    free = login_module.FREE_FAILURES["coder"]
    for _ in range(free):
        guard.failed("anna", "10.0.0.1")
    assert guard.wait("anna", "10.0.0.1") == 2.0
    guard.failed("anna", "10.0.0.1")
    assert guard.wait("anna", "10.0.0.1") == 4.0
    assert guard.wait("anna", "10.0.0.2") == 4.0  # per coder, whatever the address
    now[0] += 4.0
    assert guard.wait("anna", "10.0.0.1") <= 0
    for _ in range(30):
        guard.failed("anna", "10.0.0.1")
    assert guard.wait("anna", "10.0.0.1") == login_module.LONGEST_WAIT
    guard.succeeded("anna", "10.0.0.1")
    assert guard.wait("anna", "10.0.0.1") == 0
    # Per address: many names guessed from one address.
    for n in range(login_module.FREE_FAILURES["address"]):
        guard.failed(f"navn{n}", "10.0.0.9")
    assert guard.wait("ny", "10.0.0.9") == 2.0 and guard.wait("ny", "10.0.0.8") == 0


async def test_the_session_expires(coding):
    from datasette.utils import baseconv

    _, _, datasette = coding
    _, _, cookies = await _log_in(datasette)
    signed = datasette.unsign(cookies["ds_actor"], "actor")
    assert "e" in signed and signed["a"] == {"id": "anna"}
    queue = await datasette.client.get("/-/casebase/queue", cookies=cookies)
    assert queue.status_code == 200
    expired = datasette.sign({"a": {"id": "anna"}, "e": baseconv.base62.encode(1000)}, "actor")
    queue = await datasette.client.get("/-/casebase/queue", cookies={"ds_actor": expired})
    assert queue.status_code == 302 and "/-/casebase/login" in queue.headers["location"]


async def test_typed_sql_is_off_on_the_public_server(built_db):
    datasette = serving.make_datasette(built_db, METADATA)
    for path in ("/casebase?sql=select+1", "/casebase.json?sql=select+1", "/casebase.csv?sql=select+1"):
        assert (await datasette.client.get(path)).status_code == 403, path
    # The canned queries and table pages are the published surface.
    assert (await datasette.client.get("/casebase/cases_by_theme")).status_code == 200
    assert (await datasette.client.get("/casebase/excerpts?_search=g%C3%A5tur")).status_code == 200
    assert "Kør SQL" not in (await datasette.client.get("/casebase")).text


async def test_with_allow_sql_the_dangerous_functions_stay_out_of_reach(built_db, tmp_path):
    db = tmp_path / "casebase.db"
    shutil.copy(built_db, db)
    datasette = serving.make_datasette(db, METADATA, allow_sql=True)
    ok = await datasette.client.get("/casebase.json", params={"sql": "select count(*) as n from excerpts", "_shape": "array"})
    assert ok.status_code == 200 and ok.json()[0]["n"] > 0
    for sql in ("select length(replace(hex(zeroblob(400000000)),'00','xy'))", "select fts3_tokenizer('simple')",
                "select randomblob(400000000)", "select load_extension('x')"):
        answer = await datasette.client.get("/casebase.json", params={"sql": sql})
        assert answer.status_code == 400 and "not authorized" in answer.text, sql


async def test_a_form_that_is_not_utf8_is_a_bad_request_in_danish(coding):
    _, settings, datasette = coding
    token, cookies = await _form(datasette)
    answer = await datasette.client.post(
        "/-/casebase/login", content=b"csrftoken=\xff\xfe&name=anna",
        headers={"content-type": "application/x-www-form-urlencoded"}, cookies=cookies,
    )
    assert answer.status_code == 400 and "ikke skrevet i UTF-8" in answer.text
    assert _rows(settings) == []
