"""Candidate themes in coding mode, and from a candidate to a new code.

- ``/-/casebase/themes``: the candidate themes of the excerpts no code covers
  (``coding.themes``), or with ``code=`` of one code's excerpts (sub-codes);
  each with its distinctive lemmas, phrases and compound parts, size, cases and
  sources, and its most representative excerpts (each with "✎ kod");
- ``/-/casebase/themes/<n>``: the form that makes candidate n a code: id, Danish
  label and definition, the suggested patterns to keep or drop (and more), the
  excerpts to queue. Saving writes codebook.yaml (``coding.new_codes``: validated,
  comments and order kept) and queues the excerpts as not yet judged for the new
  code; the retrain button builds with it.

Candidates are computed in a worker thread and kept per build, code, number and
seed: a page reload does not refit.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading

from datasette.utils import tilde_encode
from datasette.utils.asgi import Forbidden, NotFound, Response

from casebase.coding import codebook as codebook_mod
from casebase.coding import new_codes, themes
from casebase.errors import CasebaseError
from casebase.publish import coding_db, serving
from casebase.publish.web import login
from casebase.publish.web.login import PREFIX

log = logging.getLogger("casebase.coding")

MAX_THEMES = 40
_CODE_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_found: dict[tuple, themes.Themes] = {}
_lock = threading.Lock()
_saving = threading.Lock()  # one new code at a time: its checks, its queue and its codebook write


def routes():
    return [
        (rf"^{PREFIX}/themes$", themes_page),
        (rf"^{PREFIX}/themes/(?P<number>[0-9]+)$", theme_code_page),
        (rf"^{PREFIX}/themes/code/(?P<code_id>[a-z][a-z0-9_]*)$", new_code_page),
    ]


def _options(request) -> tuple[str | None, int, int]:
    """The code (sub-codes) or None, the number of themes and the seed, from the query."""
    code = request.args.get("code") or None
    try:
        n = int(request.args.get("n") or themes.DEFAULT_THEMES)
        seed = int(request.args.get("seed") or themes.DEFAULT_SEED)
    except ValueError:
        raise NotFound("Antal temaer og frø skal være hele tal.") from None
    return code, max(2, min(n, MAX_THEMES)), max(0, min(seed, themes.MAX_SEED))


def _query(code, n, seed) -> str:
    return f"n={n}&seed={seed}" + (f"&code={code}" if code else "")


def _candidates(datasette, code, n, seed) -> tuple[themes.Themes, list[dict], dict]:
    conn = serving.connect(datasette)
    try:
        info = coding_db.build_info(conn)
        codes = coding_db.codes(conn)
        if code and code not in {c["id"] for c in codes}:
            raise NotFound(f"Ukendt kode: {code}")
        if code and not next(c for c in codes if c["id"] == code)["codable"]:
            # Nothing is coded with a grouping code: it has no excerpts of its own.
            raise NotFound(f"{code} er en overkode, der kun samler andre koder; intet er kodet med den. Vælg en af dens koder.")
        key = (serving.config(datasette).get("served"), info.get("built_at"), info.get("codebook_version"), code, n, seed)
        with _lock:
            found = _found.get(key)
            if found is None:
                found = themes.find(conn, n_themes=n, seed=seed, code=code)
                _found.clear()  # one build's candidates at a time
                _found[key] = found
        cases = {row[0]: row[1] for row in conn.execute("select id, title from cases")}
        return found, codes, {"cases": cases, "info": info, "since": coding_db.decisions_since_training(conn)}
    finally:
        conn.close()


async def _asked_candidates(datasette, request):
    """The options the request asks for and the candidates they give (found off the
    event loop: a first run fits the model)."""
    code, n, seed = _options(request)
    return code, n, seed, await asyncio.get_running_loop().run_in_executor(None, _candidates, datasette, code, n, seed)


async def _coder_or_login(datasette, request):
    coder = await login.coder(datasette, request)
    if coder is None:
        if request.method == "POST":
            raise Forbidden("Kun indloggede kodere kan oprette koder.")
        return None, login.login_redirect(request)
    return coder, None


async def themes_page(datasette, request):
    coder, redirect = await _coder_or_login(datasette, request)
    if redirect:
        return redirect
    code, n, seed, (found, codes, extra) = await _asked_candidates(datasette, request)
    context = {
        "coder": coder,
        "found": found,
        "codes": codes,
        "code": code,
        "code_label": next((c["label_da"] for c in codes if c["id"] == code), None),
        "n": n,
        "seed": seed,
        "query": _query(code, n, seed),
        "case_titles": extra["cases"],
        "case_url": lambda case: datasette.urls.row(serving.database_name(datasette), "cases", tilde_encode(case)),
    }
    return Response.html(await datasette.render_template("casebase_themes.html", context, request=request))


def _theme_key(theme: themes.Theme) -> str:
    """What the form offers of a theme (its patterns and excerpts), as a short digest: a
    rebuild finds the themes anew, and number n may then be another theme."""
    offered = "\n".join([*theme.patterns(), "", *(e.id for e in theme.representatives)])
    return hashlib.sha256(offered.encode("utf-8")).hexdigest()[:16]


def _form_defaults(theme: themes.Theme, code: str | None) -> dict:
    label = theme.label.capitalize()
    return {
        "id": themes.suggested_id(label),
        "label_da": label,
        "label_en": "",
        "definition": "",
        "parent": code or "",
        "patterns": theme.patterns(),
        "kept": set(theme.patterns()),
        "extra_patterns": "",
        "excerpts": {e.id for e in theme.representatives},
    }


async def theme_code_page(datasette, request):
    coder, redirect = await _coder_or_login(datasette, request)
    if redirect:
        return redirect
    code, n, seed, (found, codes, extra) = await _asked_candidates(datasette, request)
    number = int(request.url_vars["number"])
    theme = next((t for t in found.themes if t.number == number), None)
    if theme is None:
        raise NotFound(f"Der er intet kandidattema nr. {number}.")
    form = _form_defaults(theme, code)
    messages: list[str] = []
    if request.method == "POST":
        posted = await login.read_form(request)
        form = _read_form(posted, theme, form)
        settings = serving.coding_settings(datasette)
        if login.form_value(posted, "theme_key") != _theme_key(theme):
            # The patterns and excerpts ticked were another theme's: saving now would
            # silently drop them. What the coder typed is kept; the new theme's are offered.
            form = {**form, "kept": set(form["patterns"]), "excerpts": {e.id for e in theme.representatives}}
            messages = [
                f"Intet er gemt: kandidattemaerne er fundet igen, siden formularen blev åbnet (databasen er bygget igen), "
                f"og tema nr. {number} er nu et andet. Se mønstre og uddrag igen herunder, og gem."
            ]
        else:
            messages = _problems(form, settings)
        if not messages:
            outcome = await asyncio.get_running_loop().run_in_executor(None, _save, settings, form, theme, coder)
            if outcome is None:
                # Saved: a page of its own, so a reload or the retrain's return sends nothing again.
                return Response.redirect(f"{PREFIX}/themes/code/{form['id']}")
            messages = [outcome]
    context = {
        "coder": coder,
        "theme": theme,
        "theme_key": _theme_key(theme),
        "form": form,
        "codes": codes,
        "code": code,
        "query": _query(code, n, seed),
        "messages": messages,
        "case_titles": extra["cases"],
    }
    return Response.html(
        await datasette.render_template("casebase_theme_code.html", context, request=request), status=409 if messages else 200
    )


async def new_code_page(datasette, request):
    """A code made from a theme: what was written, and the way to its queue once the
    served database is built with it (the retrain button until then)."""
    coder, redirect = await _coder_or_login(datasette, request)
    if redirect:
        return redirect
    code_id = request.url_vars["code_id"]
    settings = serving.coding_settings(datasette)
    try:
        book = codebook_mod.load(settings.codebook)
    except CasebaseError as exc:
        raise NotFound(f"Kodebogen (codebook.yaml) kan ikke læses lige nu: {exc}") from None
    if code_id not in book.codes:
        raise NotFound(f"Koden {code_id} står ikke i kodebogen.")
    path = new_codes.queued_file(settings.coding_dir, code_id)
    queue_problem = None
    try:
        queued = len(new_codes.read_queued_file(path)) if path.exists() else 0
    except CasebaseError as exc:
        # A queue damaged by hand: the code stands; the page says which file to mend.
        queued, queue_problem = 0, str(exc)

    def served(conn):
        info = coding_db.build_info(conn)
        known = conn.execute("select 1 from codes where id = ?", [code_id]).fetchone() is not None
        waiting = coding_db.queue_counts(conn, code_id, coder)["proposed"] if known else None
        return info, waiting, coding_db.decisions_since_training(conn)

    def run():
        conn = serving.connect(datasette)
        try:
            return served(conn)
        finally:
            conn.close()

    info, waiting, since = await asyncio.get_running_loop().run_in_executor(None, run)
    context = {
        "coder": coder,
        "code": book.codes[code_id],
        "version": book.version,
        "queued": queued,
        "queue_problem": queue_problem,
        "waiting": waiting,
        "retrain": serving.server_state(datasette).retraining.banner(info),
        "since_training": since,
        "model_run": info.get("model_run"),
    }
    return Response.html(await datasette.render_template("casebase_new_code.html", context, request=request))


def _read_form(posted: dict, theme: themes.Theme, defaults: dict) -> dict:
    value = lambda key: login.form_value(posted, key).strip()  # noqa: E731
    extra = value("extra_patterns")
    representatives = {e.id for e in theme.representatives}
    return {
        **defaults,
        "id": value("id"),
        "label_da": value("label_da"),
        "label_en": value("label_en"),
        "definition": value("definition"),
        "parent": value("parent"),
        "kept": {p for p in posted.get("pattern", []) if p in defaults["patterns"]},
        "extra_patterns": extra,
        "excerpts": {e for e in posted.get("excerpt", []) if e in representatives},
    }


def _problems(form: dict, settings) -> list[str]:
    """What keeps the form from being saved, in Danish."""
    problems = []
    if not _CODE_ID.match(form["id"]):
        problems.append("Kodens id skal begynde med et bogstav og kun have små bogstaver a–z, tal og _ (fx telefonisk_kontakt).")
    if not form["label_da"]:
        problems.append("Giv koden en dansk etiket.")
    if not form["definition"]:
        problems.append("Giv koden en definition: hvad tæller med, og hvad gør ikke.")
    if len(form["id"]) > new_codes.MAX_ID:
        problems.append(f"Kodens id må højst have {new_codes.MAX_ID} tegn.")
    if len(form["label_da"]) > new_codes.MAX_LABEL or len(form["label_en"]) > new_codes.MAX_LABEL:
        problems.append(f"En etiket må højst have {new_codes.MAX_LABEL} tegn.")
    if len(form["definition"]) > new_codes.MAX_DEFINITION:
        problems.append(f"Definitionen må højst have {new_codes.MAX_DEFINITION:,} tegn.".replace(",", "."))
    patterns = _patterns(form)
    if len(patterns) > new_codes.MAX_PATTERNS or any(len(p) > new_codes.MAX_PATTERN for p in patterns):
        problems.append(f"Højst {new_codes.MAX_PATTERNS} mønstre, hvert på højst {new_codes.MAX_PATTERN} tegn.")
    hidden = [form["label_da"], form["label_en"], *patterns]
    if any(new_codes.has_hidden_characters(t) for t in hidden) or new_codes.has_hidden_characters(form["definition"], line_breaks=True):
        problems.append("Etiketter, definition og mønstre må ikke indeholde styretegn (fx linjeskift i en etiket).")
    try:
        book = codebook_mod.load(settings.codebook)
    except CasebaseError as exc:
        return problems + [f"Kodebogen (codebook.yaml) kan ikke læses lige nu, så intet er gemt: {exc}"]
    if form["id"] in book.codes:
        problems.append(f"Der er allerede en kode med id'et {form['id']} ({book.codes[form['id']].label_da}); vælg et andet.")
    elif form["id"] in book.renamed():
        problems.append(f"Id'et {form['id']} er en tidligere kode, som {book.renamed()[form['id']]} erstatter; vælg et andet.")
    else:
        try:
            judged = new_codes.judged_ids(settings.coding_dir)
        except CasebaseError as exc:
            return problems + [f"Listen over kodebogens versioner (codebooks.csv) kan ikke læses, så intet er gemt: {exc}"]
        if _CODE_ID.match(form["id"]) and new_codes.queued_file(settings.coding_dir, form["id"]).exists():
            # A removed code's queue: the new code would inherit another theme's excerpts.
            problems.append(
                f"Der ligger allerede en kø af uddrag for id'et {form['id']} fra en tidligere kode "
                f"(corpus/coding/queued/{form['id']}.csv); vælg et andet id."
            )
        elif form["id"] in judged:
            problems.append(
                f"Id'et {form['id']} tilhørte en kode, der er fjernet, og som kodere har bedømt uddrag efter; "
                "med samme id ville deres beslutninger blive læst som beslutninger om den nye kode. Vælg et andet."
            )
    if form["parent"] and form["parent"] not in book.codes:
        problems.append(f"Overkoden {form['parent']} findes ikke i kodebogen.")
    return problems


def _patterns(form: dict) -> list[str]:
    kept = [p for p in form["patterns"] if p in form["kept"]]
    return kept + [line.strip() for line in form["extra_patterns"].splitlines() if line.strip()]


def _check_patterns(book: codebook_mod.Codebook) -> None:
    # Every pattern compiles on the Danish pipeline, as a build would compile it.
    from casebase.coding import rules
    from casebase.nlp import danish

    rules.RuleMatcher(danish.load_pipeline(), book)


def _save(settings, form: dict, theme: themes.Theme, coder: str) -> str | None:
    """Write the new code and queue its excerpts; None, or why not (Danish)."""
    new = new_codes.NewCode(
        id=form["id"],
        label_da=form["label_da"],
        label_en=form["label_en"],
        definition=form["definition"],
        parent=form["parent"] or None,
        patterns=_patterns(form),
    )
    with _saving:
        # Two coders who passed the form's checks at once: the second finds the first's
        # code (or queue) here, before it touches the queue the first has just written.
        problems = _problems(form, settings)
        if problems:
            return problems[0]
        return _write(settings, new, form, theme, coder)


def _write(settings, new: new_codes.NewCode, form: dict, theme: themes.Theme, coder: str) -> str | None:
    # The excerpts are queued first: a queue whose code is not in the codebook is read by
    # nothing, so a codebook that cannot be written leaves nothing half-made, and a queue
    # that cannot be written keeps the code from being written without its excerpts.
    chosen = [(e.id, e.text) for e in theme.representatives if e.id in form["excerpts"]]
    queue = new_codes.queued_file(settings.coding_dir, new.id)
    queued_before = queue.exists()
    if chosen:
        try:
            new_codes.queue_excerpts(settings.coding_dir, new.id, chosen, ", ".join(theme.lemmas[:5]), coder)
        except CasebaseError as exc:
            log.error("casebase: the excerpts for %s were not queued: %s", new.id, exc)
            return f"Intet er gemt: uddragene kunne ikke sættes i kø ({exc}). Prøv igen, eller sig det til den, der driver serveren."
    try:
        new_codes.add_code(settings.codebook, new, check=_check_patterns, judged=new_codes.judged_ids(settings.coding_dir))
    except CasebaseError as exc:
        if chosen and not queued_before:
            queue.unlink(missing_ok=True)
        if "does not compile" in exc.message:
            return f"Intet er gemt: et mønster kan ikke bruges ({exc.message}). Ret eller fjern det, og gem igen."
        log.error("casebase: %s's new code %s was not saved: %s", coder, form["id"], exc)
        return f"Intet er gemt: kodebogen kunne ikke skrives ({exc}). Prøv igen, eller sig det til den, der driver serveren."
    return None
