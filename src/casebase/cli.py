"""The ``casebase`` command: a thin skin over the stage functions."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from casebase.errors import CasebaseError, machine_error


DEFAULT_CORPUS = Path("corpus")
DEFAULT_CODEBOOK = Path("codebook.yaml")
DEFAULT_DB = Path("db/casebase.db")
DEFAULT_METADATA = Path("metadata.yml")


class CasebaseCommand(click.Command):
    """A command whose machine errors (a full, read-only or failing disk; SQLite's
    "database or disk is full") become one CasebaseError naming the file: the
    one the system call failed on, else the command's database. Nothing else is
    caught here: a bug stays a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (OSError, sqlite3.OperationalError) as exc:
            file = getattr(exc, "filename", None) or ctx.params.get("db_path") or ctx.params.get("out") or "?"
            error = machine_error(exc, file, storage_only=True)
            if error is None:
                raise
            raise error from None


class CasebaseGroup(click.Group):
    """Show user errors as one line on stderr with a non-zero exit, never a traceback."""

    command_class = CasebaseCommand
    group_class = type  # subgroups (export, import) are CasebaseGroups too

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CasebaseError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


class FilePath(click.Path):
    """A file argument or option. A folder where a file belongs is one error line
    naming it, not click's usage text (a typo in a path is not a misuse of the
    command)."""

    def __init__(self):
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        if isinstance(value, (str, os.PathLike)) and os.path.isdir(value):
            raise CasebaseError(f"is a folder; {_param_name(param)} wants a file", file=value)
        return super().convert(value, param, ctx)


class FolderPath(click.Path):
    """A folder option; a file given for it is one error line naming it."""

    def __init__(self):
        super().__init__(file_okay=False, path_type=Path)

    def convert(self, value, param, ctx):
        if isinstance(value, (str, os.PathLike)) and os.path.exists(value) and not os.path.isdir(value):
            raise CasebaseError(f"is a file; {_param_name(param)} wants a folder", file=value)
        return super().convert(value, param, ctx)


def _param_name(param) -> str:
    if param is None:
        return "this"
    return param.opts[0] if param.param_type_name == "option" else param.human_readable_name


corpus_option = click.option(
    "--corpus",
    type=FolderPath(),
    default=DEFAULT_CORPUS,
    show_default=True,
    help="Corpus folder with sources.yaml, texts/, answers/ and coding/.",
)
codebook_option = click.option(
    "--codebook",
    type=FilePath(),
    default=DEFAULT_CODEBOOK,
    show_default=True,
    help="The codebook YAML file.",
)
db_option = click.option(
    "--db",
    "db_path",
    type=FilePath(),
    default=DEFAULT_DB,
    show_default=True,
    help="The SQLite database file (models are kept in models/ beside it).",
)


@click.group(cls=CasebaseGroup)
@click.version_option(package_name="casebase")
def cli():
    """casebase: kvalitativ kodning og casevidensbase for danske tekster.

    Build the knowledge base from corpus/ and codebook.yaml, code it with
    rules and a classifier trained on human decisions, and publish it with
    Datasette.
    """


def progress_option(what: str):
    return click.option(
        "--progress",
        type=click.Choice(["auto", "line", "json", "none"]),
        default="auto",
        show_default=True,
        help=f"How far each stage {what} has come, on stderr: one updating Danish line (auto: at a terminal), "
        "JSON lines (what the coding server's retrain reads of a build), or nothing.",
    )


@cli.command()
@corpus_option
@codebook_option
@db_option
@click.option("--force", is_flag=True, help="Build even if no input changed since the last build.")
@progress_option("of the build")
def build(corpus: Path, codebook: Path, db_path: Path, force: bool, progress: str):
    """Build the database from the corpus and code every excerpt.

    Does nothing when no input (corpus, codebook, coding files, model, casebase
    itself) changed since the database was built. Retrains the model only when
    the coding files or the codes changed; re-analyses only excerpt texts it has
    not analysed before (cached in db/cache/). The new database replaces the old
    one only when the whole build succeeded.
    """
    from casebase import pipeline
    from casebase.store import fingerprint

    if not force and fingerprint.up_to_date(corpus, codebook, db_path)[0]:
        click.echo(f"Up to date: {db_path} was built from exactly these inputs (use --force to rebuild)")
        return
    with _progress(progress) as shown:
        report = pipeline.build(corpus, db_path, codebook, progress=shown)
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(report.kinds.items()))
    origins = ", ".join(f"{count} {origin}" for origin, count in sorted(report.origins.items()))
    click.echo(f"Built {report.db_path}: {report.sources} sources, {report.excerpts} excerpts ({kinds}), {report.cases} cases")
    click.echo(f"Codings: {origins or 'none'}; {report.decisions} human decisions placed, {report.unplaced} unplaced")
    if report.disagreements:
        click.echo(
            f"Open disagreements: {report.disagreements} excerpts whose coders disagree are left out of training"
            " until an adjudicator rules (queue 'Uenighed mellem kodere')"
        )
    if report.model_run:
        click.echo(f"Model: {report.model_run} ({'retrained' if report.retrained else 'unchanged, reused'})")
    timings = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in report.seconds.items())
    click.echo(f"Stages: {timings}; NLP: {report.pipeline}")


class _ProgressLine:
    """One line per stage on a terminal, rewritten in place until the stage ends."""

    def __init__(self, stream):
        self.stream = stream
        self.open = False

    def __call__(self, step) -> None:
        self.stream.write("\r\033[K" + step.danish() + ("\n" if step.finished else ""))
        self.stream.flush()
        self.open = not step.finished

    def close(self) -> None:
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


def _progress_shown(mode: str):
    """Where a build's progress goes. The updating line is for a person at a terminal;
    in logs and pipes it would only be noise."""
    if mode == "auto":
        mode = "line" if sys.stderr.isatty() else "none"
    if mode == "json":
        return lambda step: print(step.json(), file=sys.stderr, flush=True)
    if mode == "line":
        return _ProgressLine(sys.stderr)
    return None


@contextmanager
def _progress(mode: str):
    """A ``Progress`` shown as ``--progress`` says, for a build or an import."""
    from casebase.progress import Progress

    shown = _progress_shown(mode)
    try:
        yield Progress(shown)
    finally:
        if isinstance(shown, _ProgressLine):
            shown.close()  # a failed command's error starts on a line of its own


@cli.command()
@corpus_option
@codebook_option
def check(corpus: Path, codebook: Path):
    """Validate sources.yaml, the source files, the codebook and the coding files.

    Lists human decisions that cannot be placed on an excerpt and decisions
    that name codes no longer in the codebook. Exits non-zero on errors.
    """
    from casebase import pipeline

    report = pipeline.check(corpus, codebook)
    for source, excerpts, cases in report.sources:
        click.echo(f"ok  {source.id:<20} {excerpts:>5} excerpts {cases:>4} cases  {source.file}")
    click.echo(f"ok  codebook {report.codebook.version}: {len(report.codebook.codes)} codes")
    resolution = report.resolution
    reanchored = sum(1 for p in resolution.placed if p.reanchored)
    click.echo(f"ok  {len(resolution.placed)} human decisions placed ({reanchored} re-anchored by their snippet)")
    for decision in resolution.unplaced:
        click.echo(
            f"unplaced  {decision.file}:{decision.line}: excerpt {decision.excerpt_id!r} not found; snippet {decision.snippet!r}"
        )
    book = report.codebook
    for decision, code in resolution.deleted_codes:
        if code in book.codes and not book.codes[code].codable:
            click.echo(
                f"grouping code  {decision.file}:{decision.line}: {code!r} is a grouping code now (codable: false),"
                " which is never coded (ignored); make it codable again or recode the excerpt with one of its codes"
            )
        else:
            click.echo(f"deleted code  {decision.file}:{decision.line}: {code!r} is no longer in the codebook (ignored)")
    parents = {code.parent for code in book.codes.values()}
    for code_id in book.grouping():
        if code_id not in parents:
            click.echo(
                f"grouping code  {book.path}:{book.codes[code_id].line}: {code_id!r} has codable: false but groups no code;"
                " it can never be coded"
            )
    for excerpt_id, readings in sorted(resolution.settled()[1].items()):
        said = "; ".join(f"{p.decision.coder}: {' '.join(p.codes) or '(ingen)'}" for p in readings)
        click.echo(f"disagreement  {excerpt_id}: {said} (left out of training until an adjudicator rules)")
    for torn in report.torn:
        if torn.moved:
            click.echo(
                f"torn  {torn.path}: {torn.size} bytes of a save that was cut off, moved aside from the coding file;"
                " save that decision again if it is wanted, then delete this file"
            )
        else:
            click.echo(
                f"torn  {torn.path}:{torn.line}: an incomplete last row ({torn.size} bytes, a save that was cut off)"
                " is not read; the next save moves it to a side file"
            )


@cli.command(name="import-decisions")
@click.argument("file", type=FilePath())
@click.option("--coder", required=True, help="The coder whose decisions these are (e.g. anna).")
@corpus_option
@codebook_option
@db_option
@progress_option("of the import")
def import_decisions(file: Path, coder: str, corpus: Path, codebook: Path, db_path: Path, progress: str):
    """Append coding decisions made elsewhere to corpus/coding/CODER.csv.

    FILE is a .csv (columns excerpt_id, codes, note) or .jsonl (same fields);
    codes are code ids separated by spaces, or empty for "none of the codes".
    Excerpt ids are checked against the built database; nothing is written
    unless every row is valid.
    """
    from casebase.coding import codebook as codebook_stage
    from casebase.coding import decision_files
    from casebase.store import database

    book = codebook_stage.load(codebook)
    decision_files.coder_file(corpus / "coding", coder)
    with _progress(progress) as shown:
        db = database.open_built(db_path)
        try:
            decisions = decision_files.read_import(file, coder, database.ExcerptTexts(db), book, shown)
        finally:
            db.close()
        shown.start("append", total=len(decisions))
        decision_files.append(corpus / "coding", decisions, book)
        shown.end()
    click.echo(f"Appended {len(decisions)} decisions to {decision_files.coder_file(corpus / 'coding', coder)}")


@cli.command()
@corpus_option
@codebook_option
@db_option
def train(corpus: Path, codebook: Path, db_path: Path):
    """Retrain the classifier on the human decisions, save it in models/ and rebuild
    the database with it. Prints the training examples and thresholds per code."""
    from casebase import pipeline
    from casebase.coding import training

    with pipeline.built_training_set(corpus, codebook, db_path) as training_set:
        model, _ = training.current_model(training_set, training.models_dir(db_path), force=True)
        book = training_set.codebook
    if model is None:
        raise CasebaseError("no human coding decisions to train on", file=corpus / "coding")
    pipeline.build_if_needed(corpus, db_path, codebook)
    meta = model.metadata
    click.echo(f"Trained {meta['run']} on {meta['training_examples']} human-coded excerpts")
    click.echo(f"{'code':<24} {'positives':>9} {'threshold':>9}  coded by")
    for code in book.in_tree_order():
        threshold = meta["thresholds"].get(code)
        name = "  " * book.depth(code) + code
        by = "model" if threshold is not None else "rules (too few examples)"
        shown = f"{threshold:.3f}" if threshold is not None else "-"
        click.echo(f"{name:<24} {meta['support'].get(code, 0):>9} {shown:>9}  {by}")


@cli.command()
@click.option("--size", type=click.IntRange(1), default=400, show_default=True, help="How many excerpts to draw.")
@click.option("--seed", type=int, required=True, help="The random seed, recorded in the sample's name (e.g. today's date, 20261203).")
@corpus_option
@codebook_option
@db_option
def sample(size: int, seed: int, corpus: Path, codebook: Path, db_path: Path):
    """Draw a random evaluation sample for coders: excerpts nobody has decided on.

    Every kind of excerpt in proportion; deterministic for a seed. Written to
    corpus/coding/samples/random-SEED.csv (never replaced). Code its excerpts
    like any other; 'casebase evaluate' reports them as the random-sample
    stratum: how the rules and the model do beyond the keywords.
    """
    from casebase import pipeline

    drawn = pipeline.draw_sample(corpus, codebook, db_path, size, seed)
    per_kind = ", ".join(f"{drawn.drawn[k]} of {drawn.population[k]} {k}" for k in sorted(drawn.population))
    click.echo(f"Wrote {drawn.path}: {len(drawn.rows)} excerpts ({per_kind})")


@cli.command()
@corpus_option
@codebook_option
@db_option
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True)
@click.option(
    "--answers",
    type=FilePath(),
    help="Labelled texts outside the corpus (JSON Lines: id, text, codes) to measure on as their own stratum.",
)
def evaluate(corpus: Path, codebook: Path, db_path: Path, folds: int, answers: Path | None):
    """Measure the classifier beside the rules alone, in strata.

    Cross-validated on every human decision; on the random evaluation samples
    (corpus/coding/samples/: text nobody chose by its words); and with
    --answers on labelled texts outside the corpus. Per code precision, recall,
    F1 and support, macro-F1, exact-set accuracy, and the routing: the share
    the model codes on its own (auto) and how often those are right. Stored in
    the model_runs, code_metrics and routing_curve tables.
    """
    from casebase import pipeline
    from casebase.coding import evaluation

    figures, book = pipeline.evaluate(corpus, codebook, db_path, folds, answers)
    click.echo(evaluation.table(figures, book))


@cli.command()
@click.option("--n", "n_themes", type=click.IntRange(2, 100), default=12, show_default=True, help="How many candidate themes.")
@click.option(
    "--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="The random seed: the same seed gives the same themes."
)
@click.option("--code", help="Propose sub-codes: cluster the excerpts of this code that no child of it covers.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per theme, one a line.")
@corpus_option
@codebook_option
@db_option
def themes(n_themes: int, seed: int, code: str | None, as_json: bool, corpus: Path, codebook: Path, db_path: Path):
    """Candidate themes: what the excerpts no code covers yet talk about.

    Paragraphs, quotes, answers and case fields with no coding and no rule
    evidence (or, with --code, the code's excerpts that none of its children
    covers) are clustered on their Danish lemmas and compound parts (NMF on
    tf-idf). Each theme: its distinctive lemmas, phrases and compound parts,
    its size, the cases and sources it touches, suggested patterns and its most
    representative excerpts. Make one a code on the coding server's page
    /-/casebase/themes.
    """
    import json

    from casebase import pipeline
    from casebase.coding import themes as themes_mod

    found = pipeline.candidate_themes(corpus, codebook, db_path, n_themes, seed, code)
    if as_json:
        for theme in found.themes:
            click.echo(json.dumps(themes_mod.as_dict(theme), ensure_ascii=False))
        return
    what = f"excerpts of {code} no child covers" if code else "uncovered excerpts"
    click.echo(
        f"{found.excerpts} {what} ({found.clustered} with at least {themes_mod.MIN_WORDS} content words), "
        f"{len(found.themes)} candidate themes, seed {found.seed}"
        + (f"; {found.unplaced} share no word with the {found.fitted:,} the model was fitted on" if found.unplaced else "")
    )
    for theme in found.themes:
        click.echo("")
        click.echo(f"{theme.number}. {theme.label}  ({theme.size} excerpts, {len(theme.cases)} cases, {len(theme.sources)} sources)")
        click.echo(f"   lemmas:   {', '.join(theme.lemmas)}")
        click.echo(f"   phrases:  {', '.join(theme.phrases)}")
        click.echo(f"   parts:    {', '.join(theme.parts)}")
        click.echo(f"   patterns: {'  '.join(theme.patterns())}")
        click.echo(f"   sources:  {', '.join(f'{s} ({n})' for s, n in theme.sources.most_common())}")
        for excerpt in theme.representatives[:3]:
            text = " ".join(excerpt.text.split())
            click.echo(f"   - {text[:150]}{'…' if len(text) > 150 else ''}  [{excerpt.id}]")


@cli.command()
@corpus_option
@codebook_option
@db_option
def agreement(corpus: Path, codebook: Path, db_path: Path):
    """Intercoder agreement per code and overall, and the model as an extra coder.

    On the excerpts coded by two or more coders: percent agreement,
    Krippendorff's alpha and Cohen's kappa for each pair of coders; the model's
    out-of-fold predictions against each coder. Prints the figures and stores
    them in the database's agreement table.
    """
    from casebase import pipeline
    from casebase.coding import agreement as agreement_stage, out_of_fold as out_of_fold_stage, training
    from casebase.store import database

    with pipeline.built_training_set(corpus, codebook, db_path) as training_set:
        if not training_set.resolution.placed:
            raise CasebaseError("no human coding decisions to measure agreement on", file=corpus / "coding")
        directory = training.models_dir(db_path)
        out_of_fold = out_of_fold_stage.out_of_fold(training_set, directory, compute=False)
        if out_of_fold is None:
            click.echo(
                f"Cross-validating the model on the human-coded excerpts ({out_of_fold_stage.DEFAULT_FOLDS} trainings;"
                " minutes on a real corpus, kept for later runs) ...",
                err=True,
            )
            out_of_fold = out_of_fold_stage.out_of_fold(training_set, directory)
        result = agreement_stage.compute(training_set, out_of_fold)
    click.echo(agreement_stage.table(result, training_set.codebook))
    database.replace_agreement(db_path, result.rows())
    click.echo(f"Stored {len(result.figures)} figures in the agreement table of {db_path}")


@cli.command()
@click.argument("file", type=FilePath())
@click.option("--column", help="The text column (.csv) or field (.jsonl); default 'text'.")
@codebook_option
@db_option
def classify(file: Path, column: str | None, codebook: Path, db_path: Path):
    """Code new texts without building: FILE is .txt (one text per line), .csv or .jsonl.

    Prints JSON Lines, one object per input text in order, with its codes,
    their scores and the rule evidence.
    """
    from casebase import pipeline
    from casebase.ingest import sources

    texts = sources.read_input_texts(file, column)
    for item in pipeline.classify(texts, codebook, db_path):
        click.echo(json.dumps(item, ensure_ascii=False))


DEFAULT_CODERS = Path("coders.json")

coders_option = click.option(
    "--coders",
    "coders_path",
    type=FilePath(),
    default=DEFAULT_CODERS,
    show_default=True,
    help="The coder accounts file (salted password hashes; keep it out of git).",
)


@cli.command()
@db_option
@click.option("--metadata", type=FilePath(), default=DEFAULT_METADATA, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=8001, show_default=True)
@click.option("--coding", is_flag=True, help="Let logged-in coders code excerpts in the browser (writes corpus/coding/).")
@click.option("--allow-sql", is_flag=True, help="Let visitors run SQL they type (off: the pages and canned queries only).")
@corpus_option
@codebook_option
@coders_option
def serve(db_path: Path, metadata: Path, host: str, port: int, coding: bool, allow_sql: bool, corpus: Path, codebook: Path, coders_path: Path):
    """Serve the knowledge base with Datasette.

    Without --coding the server is public and read-only. With --coding,
    coders log in (see 'casebase coders add') and code excerpts, review the
    model's suggestions and retrain from the browser.
    """
    from casebase.publish import serving

    settings = serving.CodingSettings(corpus, codebook, coders_path) if coding else None
    datasette = serving.make_datasette(db_path, metadata, settings, allow_sql=allow_sql)
    mode = "coding (coders log in at /-/casebase/login)" if coding else "read-only"
    click.echo(f"Serving {db_path} {mode} on http://{host}:{port}/", err=True)
    serving.run(datasette, host, port)


@cli.group(name="coders", cls=CasebaseGroup)
def coders_group():
    """Coder accounts for 'casebase serve --coding'."""


@coders_group.command(name="add")
@click.argument("name")
@coders_option
@click.password_option(
    "--password",
    prompt="Adgangskode",
    help="Asked for twice when not given (better than the command line, which the shell history keeps).",
)
@click.option(
    "--adjudicator/--not-adjudicator",
    default=None,
    help="May (or may no longer) rule on excerpts where coders disagree (queue 'Uenighed'); unchanged when not given.",
)
def coders_add(name: str, coders_path: Path, password: str, adjudicator: bool | None):
    """Add a coder NAME (or set a new password); only a salted hash is stored.

    The password (at least 8 characters) is asked for twice, hidden, and the
    two must match. Without a terminal both are read from stdin, one a line:

    \b
        printf '%s\\n%s\\n' "$PW" "$PW" | casebase coders add anna
    """
    from casebase.publish import coders

    coders.add(coders_path, name, password, adjudicator)
    click.echo(f"Coder {name} saved in {coders_path}" + (" (adjudicator)" if coders.is_adjudicator(coders_path, name) else ""))


@coders_group.command(name="remove")
@click.argument("name")
@coders_option
def coders_remove(name: str, coders_path: Path):
    """Remove a coder's login (their decisions stay in corpus/coding/)."""
    from casebase.publish import coders

    coders.remove(coders_path, name)
    click.echo(f"Coder {name} removed from {coders_path}")


@coders_group.command(name="list")
@coders_option
def coders_list(coders_path: Path):
    """List the coders who can log in."""
    from casebase.publish import coders

    for name in coders.names(coders_path):
        click.echo(name + ("  (adjudicator)" if coders.is_adjudicator(coders_path, name) else ""))


def _origins_option(default: str, help_text: str):
    def parse(ctx, param, value: str) -> tuple[str, ...]:
        from casebase.store.database import ORIGINS

        items = [v.strip() for v in value.split(",") if v.strip()]
        unknown = [v for v in items if v not in ORIGINS]
        if unknown or not items:
            raise click.BadParameter(
                f"{', '.join(unknown) or repr(value)}: use a comma-separated list of {', '.join(ORIGINS)}"
            )
        return tuple(o for o in ORIGINS if o in items)

    return click.option("--origin", "origins", default=default, show_default=True, callback=parse, help=help_text)


@cli.group(name="export")
def export_group():
    """Publish the coded corpus for other tools: REFI-QDA (.qdpx, .qdc) and Excel (.xlsx)."""


@export_group.command(name="qdpx")
@click.argument("out", type=FilePath())
@db_option
@_origins_option(
    "human",
    "Which codings to export: human, model, rule, comma-separated. REFI-QDA cannot say where a coding "
    "came from except by its user, so model and rule codings come under a user per model run and 'rules'.",
)
@click.option("--name", default="casebase", show_default=True, help="The project's name in the QDA program.")
def export_qdpx(out: Path, db_path: Path, origins: tuple[str, ...], name: str):
    """Write a REFI-QDA project (.qdpx) for NVivo, ATLAS.ti, MAXQDA and others.

    The codebook, every source's cleaned text, the codings as selections at
    the excerpts' offsets, the cases with their variables (municipality, area,
    target group, theme), and the coders as users. Re-exports of the same
    database are byte-identical.
    """
    from casebase.publish import refiqda

    report = refiqda.export_qdpx(db_path, out, origins, name)
    codings = ", ".join(f"{count} {origin}" for origin, count in sorted(report.codings.items())) or "none"
    click.echo(
        f"Wrote {report.path}: {report.sources} sources, {report.selections} selections, "
        f"codings: {codings}; {report.cases} cases, {report.users} users"
    )
    if not report.codings:
        click.echo("No codings of that origin; add --origin human,model,rule for the model's and the rules' codings.")


@export_group.command(name="qdc")
@click.argument("out", type=FilePath())
@codebook_option
def export_qdc(out: Path, codebook: Path):
    """Write the codebook as a REFI-QDA codebook (.qdc).

    Names are the Danish labels; the description carries the definition and
    the include/exclude criteria. Each code's GUID is derived from its id, so
    'casebase import qdc' recognises the codes again after a round trip.
    """
    from casebase.coding import codebook as codebook_stage
    from casebase.publish import refiqda

    count = refiqda.export_qdc(codebook_stage.load(codebook), out)
    click.echo(f"Wrote {out}: {count} codes")


@export_group.command(name="xlsx")
@click.argument("out", type=FilePath())
@db_option
@_origins_option(
    "human,model,rule",
    "Which final codings to count: human, model, rule, comma-separated.",
)
def export_xlsx(out: Path, db_path: Path, origins: tuple[str, ...]):
    """Write an Excel workbook: case × code and source × code counts, and the coded excerpts."""
    from casebase.publish import spreadsheet

    report = spreadsheet.export_xlsx(db_path, out, origins)
    click.echo(
        f"Wrote {report.path}: {report.cases} cases, {report.sources} sources, "
        f"{report.excerpts} coded excerpts ({report.codings} codings: {', '.join(origins)})"
    )


@cli.group(name="import")
def import_group():
    """Bring in work done in other tools. (Coding decisions: see import-decisions.)"""


@import_group.command(name="qdc")
@click.argument("file", type=FilePath())
@codebook_option
@click.option(
    "--output",
    "-o",
    type=FilePath(),
    help="Where to write the codebook YAML (default: the --codebook file).",
)
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
def import_qdc(file: Path, codebook: Path, output: Path | None, force: bool):
    """Write a codebook YAML from a REFI-QDA codebook (.qdc) made in NVivo, ATLAS.ti, MAXQDA ….

    Names become label_da, the hierarchy parent, colours colour, descriptions
    the definition (with include/exclude lists where the description has
    them). Codes that the --codebook file already has, found by GUID or name,
    keep their id, English label, examples and patterns; new codes get an id
    made from their name. Refuses to replace an existing file unless --force.
    """
    from casebase.publish import refiqda

    report = refiqda.import_qdc(file, output or codebook, existing_path=codebook, force=force)
    click.echo(f"Wrote {report.path}: {report.codes} codes ({len(report.kept)} kept their id, {len(report.new)} new)")
    if report.new:
        click.echo(f"new codes: {', '.join(report.new)}")
    if report.removed:
        click.echo(f"no longer in the codebook: {', '.join(report.removed)}")


@import_group.command(name="qdpx")
@click.argument("file", type=FilePath())
@corpus_option
@codebook_option
@click.option(
    "--output",
    "-o",
    type=FilePath(),
    help="Write the merged codebook here instead of into the --codebook file (which is then left alone).",
)
@click.option("--check", is_flag=True, help="Dry run: report what would be imported, write nothing.")
@progress_option("of the import")
def import_qdpx(file: Path, corpus: Path, codebook: Path, output: Path | None, check: bool, progress: str):
    """Bring a REFI-QDA project (.qdpx) from NVivo, ATLAS.ti, MAXQDA, QualCoder … into the corpus.

    Text sources become corpus texts (kept exactly, parser 'plain') with
    sources.yaml entries; the codebook merges into codebook.yaml (by GUID,
    then by name); users become coders and their codings decisions in
    corpus/coding/<coder>.csv, on the excerpts the selections mostly cover.
    What cannot be placed or read (a PDF, a selection inside a paragraph) is
    listed. Nothing is written when the file is broken or hostile.
    """
    from casebase.publish import qdpx_import

    with _progress(progress) as shown:
        report = qdpx_import.import_qdpx(file, corpus, codebook, output, check=check, progress=shown)
    if report.undone:
        click.echo(f"Undid the import of {report.undone} that was cut off before it finished")
    verb = "Would import" if check else "Imported"
    coders = ", ".join(f"{coder} {n}" for coder, n in sorted(report.coders.items())) or "none"
    click.echo(f"{verb} {report.path}: {len(report.sources)} sources ({', '.join(report.sources)})")
    click.echo(
        f"codebook {report.codebook_path}: {report.codes} codes ({len(report.kept)} kept their id, {len(report.new)} new)"
    )
    click.echo(
        f"{report.decisions} decisions from {report.codings} codings ({report.rulings} rulings); by coder: {coders}"
    )
    for line in report.skipped + report.grouping:
        click.echo(f"skipped: {line}")
    if report.machine:
        click.echo(f"left out: {report.machine} codings by casebase's model and rules (suggestions, not a coder's reading)")
    if report.cases:
        click.echo(f"{report.cases} cases, each in its source's 'cases' in sources.yaml")
    for line in report.cases_skipped:
        click.echo(f"skipped: {line}")
    if report.answers:
        click.echo(f"not imported: the attributes of {report.answers} survey answers (each answer is a paragraph of its source now)")
    if report.unplaced:
        click.echo(f"{len(report.unplaced)} codings cover no excerpt mostly (more than half of it) and were not imported:")
        for u in report.unplaced:
            click.echo(f"  {u.source} [{u.start}, {u.end}) by {u.coder}: {u.text!r}")
