"""CLI for the publish wing: the static site and the newsletter."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli import State, _print_reports, _progress, main, pass_state  # noqa: F401
from digest.errors import DigestError  # noqa: F401


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Output folder for the site.")
@click.option("--no-search", is_flag=True, help="Skip the Pagefind search index.")
@pass_state
def build(state: State, out_dir: Path | None, no_search: bool) -> None:
    """Render the static findings site, then index it for client-side search."""
    import time

    from digest import pipeline

    started = time.perf_counter()
    out, written = pipeline.build_site(state.engine, state.config, out_dir)
    click.echo(f"Site: {out / 'index.html'} ({written} files written) in {time.perf_counter() - started:.2f} s")
    if not no_search and (written or not (out / "pagefind" / "pagefind.js").exists()):
        seconds = pipeline.build_search(out)
        click.echo(f"Search index: {out / 'pagefind'} ({seconds:.2f} s)")


@main.command()
@click.option("--week", required=True, help="ISO week, e.g. 2026-W48.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Folder for the .eml file.")
@pass_state
def newsletter(state: State, week: str, out_dir: Path | None) -> None:
    """Write one week's newsletter (HTML and plain text) as an .eml file."""
    from digest import pipeline

    path = pipeline.build_newsletter(state.engine, state.config, week, out_dir)
    click.echo(f"Newsletter: {path}")
