"""CLI for the publish wing: the static site and the newsletter."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli import State, _print_reports, _progress, main, pass_state  # noqa: F401
from digest.errors import DigestError  # noqa: F401


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Output folder for the site.")
@pass_state
def build(state: State, out_dir: Path | None) -> None:
    """Render the static findings site."""
    from digest import pipeline

    out, written = pipeline.build_site(state.engine, state.config, out_dir)
    click.echo(f"Site: {out / 'index.html'} ({written} files written)")


@main.command()
@click.option("--week", required=True, help="ISO week, e.g. 2026-W48.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Folder for the .eml file.")
@pass_state
def newsletter(state: State, week: str, out_dir: Path | None) -> None:
    """Write one week's newsletter (HTML and plain text) as an .eml file."""
    from digest import pipeline

    path = pipeline.build_newsletter(state.engine, state.config, week, out_dir)
    click.echo(f"Newsletter: {path}")
