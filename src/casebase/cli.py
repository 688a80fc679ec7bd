"""The ``casebase`` command: a thin skin over the stage functions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import build as build_stage
from .errors import CasebaseError

DEFAULT_CORPUS = Path("corpus")
DEFAULT_CODEBOOK = Path("codebook.yaml")
DEFAULT_DB = Path("db/casebase.db")
DEFAULT_METADATA = Path("metadata.yml")


class CasebaseGroup(click.Group):
    """Show user errors as one line on stderr with a non-zero exit, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except CasebaseError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


corpus_option = click.option(
    "--corpus",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_CORPUS,
    show_default=True,
    help="Corpus folder with sources.yaml, texts/, answers/ and coding/.",
)
codebook_option = click.option(
    "--codebook",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_CODEBOOK,
    show_default=True,
    help="The codebook YAML file.",
)
db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
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


@cli.command()
@corpus_option
@codebook_option
@db_option
def build(corpus: Path, codebook: Path, db_path: Path):
    """Build the database from the corpus and code every excerpt.

    Retrains the model only when the codebook or the coding files changed.
    The new database replaces the old one only when the whole build succeeded.
    """
    # The bar is for a person at a terminal; in logs and pipes it would only be noise.
    with click.progressbar(
        length=len(build_stage.STAGES), label="Bygger", file=sys.stderr, hidden=not sys.stderr.isatty()
    ) as bar:
        report = build_stage.build(corpus, db_path, codebook, on_stage=lambda name: bar.update(1))
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(report.kinds.items()))
    origins = ", ".join(f"{count} {origin}" for origin, count in sorted(report.origins.items()))
    click.echo(f"Built {report.db_path}: {report.sources} sources, {report.excerpts} excerpts ({kinds}), {report.cases} cases")
    click.echo(f"Codings: {origins or 'none'}; {report.decisions} human decisions placed, {report.unplaced} unplaced")
    if report.model_run:
        click.echo(f"Model: {report.model_run} ({'retrained' if report.retrained else 'unchanged, reused'})")
    timings = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in report.seconds.items())
    click.echo(f"Stages: {timings}; NLP: {report.pipeline}")


@cli.command()
@corpus_option
@codebook_option
def check(corpus: Path, codebook: Path):
    """Validate sources.yaml, the source files, the codebook and the coding files.

    Lists human decisions that cannot be placed on an excerpt and decisions
    that name codes no longer in the codebook. Exits non-zero on errors.
    """
    prepared = build_stage.prepare(corpus, codebook)
    for result in prepared.results:
        click.echo(
            f"ok  {result.source.id:<20} {len(result.excerpts):>5} excerpts {len(result.cases):>4} cases  {result.source.file}"
        )
    click.echo(f"ok  codebook {prepared.codebook.version}: {len(prepared.codebook.codes)} codes")
    resolution = prepared.resolution
    reanchored = sum(1 for p in resolution.placed if p.reanchored)
    click.echo(f"ok  {len(resolution.placed)} human decisions placed ({reanchored} re-anchored by their snippet)")
    for decision in resolution.unplaced:
        click.echo(
            f"unplaced  {decision.file}:{decision.line}: excerpt {decision.excerpt_id!r} not found; snippet {decision.snippet!r}"
        )
    for decision, code in resolution.deleted_codes:
        click.echo(f"deleted code  {decision.file}:{decision.line}: {code!r} is no longer in the codebook (ignored)")


@cli.command(name="import-decisions")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--coder", required=True, help="The coder whose decisions these are (e.g. anna).")
@corpus_option
@codebook_option
@db_option
def import_decisions(file: Path, coder: str, corpus: Path, codebook: Path, db_path: Path):
    """Append coding decisions made elsewhere to corpus/coding/CODER.csv.

    FILE is a .csv (columns excerpt_id, codes, note) or .jsonl (same fields);
    codes are code ids separated by spaces, or empty for "none of the codes".
    Excerpt ids are checked against the built database; nothing is written
    unless every row is valid.
    """
    import sqlite_utils

    from . import codebook as codebook_stage, coding

    if not db_path.exists():
        raise CasebaseError("no database; run 'casebase build' first", file=db_path)
    texts = {row["id"]: row["text"] for row in sqlite_utils.Database(db_path).query("select id, text from excerpts")}
    book = codebook_stage.load(codebook)
    coding.coder_file(corpus / "coding", coder)
    decisions = coding.read_import(file, coder, texts, book)
    coding.append(corpus / "coding", decisions, book)
    click.echo(f"Appended {len(decisions)} decisions to {coding.coder_file(corpus / 'coding', coder)}")


@cli.command()
@corpus_option
@codebook_option
@db_option
def train(corpus: Path, codebook: Path, db_path: Path):
    """Train the classifier on the human decisions and save it in models/."""
    prepared = build_stage.prepare(corpus, codebook)
    model, _ = build_stage.current_model(prepared, build_stage.models_dir(db_path), force=True)
    if model is None:
        raise CasebaseError("no human coding decisions to train on", file=corpus / "coding")
    meta = model.metadata
    click.echo(f"Trained {meta['run']} on {meta['training_examples']} human-coded excerpts")
    click.echo(f"{'code':<24} {'positives':>9} {'threshold':>9}  coded by")
    for code in prepared.codebook.in_tree_order():
        threshold = meta["thresholds"].get(code)
        name = "  " * prepared.codebook.depth(code) + code
        by = "model" if threshold is not None else "rules (too few examples)"
        shown = f"{threshold:.3f}" if threshold is not None else "-"
        click.echo(f"{name:<24} {meta['support'].get(code, 0):>9} {shown:>9}  {by}")


@cli.command()
@corpus_option
@codebook_option
@db_option
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True)
def evaluate(corpus: Path, codebook: Path, db_path: Path, folds: int):
    """Cross-validate the classifier on the human decisions, beside the rules alone.

    Prints precision, recall, F1 and support per code with micro and macro
    averages, and stores them in the model_runs and code_metrics tables.
    """
    from . import evaluate as evaluate_stage

    prepared = build_stage.prepare(corpus, codebook)
    directory = build_stage.models_dir(db_path)
    model, _ = build_stage.current_model(prepared, directory)
    if model is None:
        raise CasebaseError("no human coding decisions to evaluate on", file=corpus / "coding")
    evaluation = evaluate_stage.run(prepared, model, folds=folds, directory=directory)
    evaluate_stage.save(evaluation, directory, db_path, model)
    click.echo(evaluate_stage.table(evaluation, prepared.codebook))


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
    from . import agreement as agreement_stage, store

    prepared = build_stage.prepare(corpus, codebook)
    if not prepared.resolution.placed:
        raise CasebaseError("no human coding decisions to measure agreement on", file=corpus / "coding")
    directory = build_stage.models_dir(db_path)
    out_of_fold = build_stage.out_of_fold(prepared, directory, compute=False)
    if out_of_fold is None:
        click.echo(
            f"Cross-validating the model on the human-coded excerpts ({build_stage.DEFAULT_FOLDS} trainings;"
            " minutes on a real corpus, kept for later runs) ...",
            err=True,
        )
        out_of_fold = build_stage.out_of_fold(prepared, directory)
    result = agreement_stage.compute(prepared, out_of_fold)
    click.echo(agreement_stage.table(result, prepared.codebook))
    if db_path.exists():
        store.replace_agreement(db_path, result.rows())
        click.echo(f"Stored {len(result.figures)} figures in the agreement table of {db_path}")
    else:
        click.echo(f"Not stored: no database at {db_path} (run 'casebase build')")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--column", help="The text column (.csv) or field (.jsonl); default 'text'.")
@codebook_option
@db_option
def classify(file: Path, column: str | None, codebook: Path, db_path: Path):
    """Code new texts without building: FILE is .txt (one text per line), .csv or .jsonl.

    Prints JSON Lines, one object per input text in order, with its codes,
    their scores and the rule evidence.
    """
    from . import assign, classify as classify_stage, codebook as codebook_stage, nlp, rules, sources

    texts = sources.read_input_texts(file, column)
    book = codebook_stage.load(codebook)
    model = classify_stage.load(build_stage.models_dir(db_path))
    if model is None:
        raise CasebaseError("no trained model; run 'casebase build' or 'casebase train' first", file=build_stage.models_dir(db_path))
    if model.code_ids != book.ids:
        raise CasebaseError("the model was trained on another codebook; run 'casebase train'", file=codebook)
    pipeline = nlp.load_pipeline()
    matcher = rules.RuleMatcher(pipeline, book)
    batch = 2000
    for start in range(0, len(texts), batch):
        for item in assign.code_texts(texts[start : start + batch], pipeline, matcher, book, model):
            click.echo(json.dumps(item, ensure_ascii=False))


@cli.command()
@db_option
@click.option("--metadata", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_METADATA, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=int, default=8001, show_default=True)
def serve(db_path: Path, metadata: Path, host: str, port: int):
    """Serve the knowledge base with Datasette (read-only)."""
    if not db_path.exists():
        raise CasebaseError("no database; run 'casebase build' first", file=db_path)
    if not metadata.exists():
        raise CasebaseError("metadata file not found", file=metadata)
    from datasette.cli import cli as datasette_cli

    args = ["serve", str(db_path), "--metadata", str(metadata), "--host", host, "--port", str(port)]
    datasette_cli.main(args=args, prog_name="casebase serve")
