"""The ``casebase`` command: a thin skin over the stage functions."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import build as build_stage
from .errors import CasebaseError

DEFAULT_CORPUS = Path("corpus")
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
db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DB,
    show_default=True,
    help="The SQLite database file.",
)


@click.group(cls=CasebaseGroup)
@click.version_option(package_name="casebase")
def cli():
    """casebase: kvalitativ kodning og casevidensbase for danske tekster.

    Build the knowledge base from corpus/, check the corpus, and publish it
    with Datasette.
    """


@cli.command()
@corpus_option
@db_option
def build(corpus: Path, db_path: Path):
    """Build the database from the corpus.

    The new database replaces the old one only when the whole build succeeded.
    """
    stages = build_stage.STAGES
    with click.progressbar(length=len(stages), label="Bygger", show_pos=True, file=sys.stderr) as bar:
        report = build_stage.build(corpus, db_path, on_stage=lambda name: bar.update(1))
    kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(report.kinds.items()))
    click.echo(f"Built {report.db_path}: {report.sources} sources, {report.excerpts} excerpts ({kinds}), {report.cases} cases")
    timings = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in report.seconds.items())
    click.echo(f"Stages: {timings}; NLP: {report.pipeline}")


@cli.command()
@corpus_option
def check(corpus: Path):
    """Validate sources.yaml and every source file without building."""
    results = build_stage.check(corpus)
    for result in results:
        click.echo(
            f"ok  {result.source.id:<20} {len(result.excerpts):>5} excerpts {len(result.cases):>4} cases  {result.source.file}"
        )


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
