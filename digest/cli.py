"""Thin CLI: parse options, open the store, call the pipeline, turn DigestError into one clean line."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from digest.errors import DigestError

log = logging.getLogger("digest")


class DigestGroup(click.Group):
    """Every DigestError ends the command with 'Error: <one line>' and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)


class State:
    """Config and engine, loaded only when a command asks for them."""

    def __init__(self, config_path: str | None, db_url: str | None):
        self.config_path = config_path
        self.db_url = db_url
        self._config = None
        self._engine = None

    @property
    def config(self):
        from digest.config import load_config, resolve_config_path

        if self._config is None:
            self._config = load_config(resolve_config_path(self.config_path))
        return self._config

    @property
    def engine(self):
        from digest import store

        if self._engine is None:
            self._engine = store.open_engine(self.db_url or self.config.default_db_url)
            store.init_db(self._engine)
        return self._engine


pass_state = click.make_pass_decorator(State)


@click.group(cls=DigestGroup)
@click.option("--config", "config_path", envvar="DIGEST_CONFIG", help="Config TOML file (default: data/digest.toml).")
@click.option("--db", "db_url", envvar="DIGEST_DB", help="SQLAlchemy database URL (default: SQLite in the workspace).")
@click.option("-v", "--verbose", is_flag=True, help="Log every step.")
@click.version_option(package_name="digest")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, db_url: str | None, verbose: bool) -> None:
    """Digest: arXiv papers and ML blog posts in; findings site, weekly newsletter and tag search out."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    ctx.obj = State(config_path, db_url)


@main.command()
@pass_state
def init(state: State) -> None:
    """Create the database and register the configured sources."""
    from digest import store

    store.sync_sources(state.engine, state.config.sources)
    click.echo(f"Database ready: {state.engine.url.render_as_string(hide_password=True)}")
    click.echo(f"{len(state.config.sources)} sources from {state.config.path}")


@main.command()
@click.option("--source", "source_name", help="Ingest only this source (its name in the config).")
@pass_state
def ingest(state: State, source_name: str | None) -> None:
    """Fetch new papers and posts from every source (or one) into the database."""
    from digest import pipeline

    with _progress() as progress:
        reports = pipeline.ingest(state.engine, state.config, only=source_name, progress=progress)
    _print_reports(reports)
    broken = [r for r in reports if r.status == "broken"]
    if broken:
        names = ", ".join(f"{r.source} ({r.error})" for r in broken)
        raise DigestError(f"{len(broken)} source(s) broken: {names}")


@main.command()
@pass_state
def tag(state: State) -> None:
    """Embed new or changed items and tag every item with 0-3 topics."""
    from digest import pipeline
    from digest.embed import load_embedder

    embedder = load_embedder(state.config.embed_model)
    with _progress() as progress:
        result = pipeline.tag_items(state.engine, state.config, embedder, progress=progress)
    click.echo(f"Embedded {result['embedded']} new or changed items; {result['tagged']}/{result['items']} tagged.")


@main.command()
@pass_state
def claims(state: State) -> None:
    """Extract headline numbers from titles and summaries into the claims ledger."""
    from digest import pipeline

    n = pipeline.extract_claims(state.engine)
    click.echo(f"Extracted {n} claims.")


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


@main.command()
@click.argument("query")
@click.option("--tag", "tags", multiple=True, help="Only items with this topic slug (repeatable; all must match).")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000), help="Most results to show.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_state
def search(state: State, query: str, tags: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Find findings whose title or summary contains every word of QUERY."""
    from digest import store

    ids = store.search_ids(state.engine, query.split(), list(tags), limit)
    views = store.item_views(state.engine, ids)
    if as_json:
        click.echo(json.dumps([_export_row(v) for v in views], ensure_ascii=False, indent=1))
        return
    if not views:
        click.echo("No results.")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("date", "title", "tags", "headline", box=None)
    for v in views:
        from digest.render import format_claim

        headline = format_claim(v.claims[0]) if v.claims else ""
        table.add_row(v.item.published.strftime("%Y-%m-%d"), v.item.title, ", ".join(s for s, _ in v.tags), headline)
    Console().print(table)


@main.command()
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True, help="Output format."
)
@pass_state
def export(state: State, fmt: str) -> None:
    """Print every finding as one JSON object per line (tags and claims included)."""
    from digest import store

    for view in store.item_views(state.engine):
        click.echo(json.dumps(_export_row(view), ensure_ascii=False))


@main.command()
@click.option(
    "--workspace",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo writes (default: workspace/demo).",
)
@click.option("--week", help="Newsletter week (default: the latest week in the snapshot).")
@pass_state
def demo(state: State, workspace: Path | None, week: str | None) -> None:
    """Serve the bundled snapshot on 127.0.0.1 and run the whole pipeline against it."""
    from digest import pipeline, store
    from digest.demo import SnapshotServer, demo_config
    from digest.embed import load_embedder

    base_config = state.config
    workspace = (workspace or base_config.workspace / "demo").resolve()
    with SnapshotServer(base_config) as server:
        config = demo_config(base_config, server.base, workspace)
        engine = store.open_engine(state.db_url or config.default_db_url)
        store.init_db(engine)
        with _progress() as progress:
            reports = pipeline.ingest(engine, config, progress=progress)
    _print_reports(reports)
    broken = [r for r in reports if r.status == "broken"]
    if broken:
        raise DigestError(f"demo snapshot broken for: {', '.join(f'{r.source} ({r.error})' for r in broken)}")
    embedder = load_embedder(config.embed_model)
    with _progress() as progress:
        tagged = pipeline.tag_items(engine, config, embedder, progress=progress)
    n_claims = pipeline.extract_claims(engine)
    out, _ = pipeline.build_site(engine, config)
    week = week or pipeline.latest_week(engine)
    eml = pipeline.build_newsletter(engine, config, week)
    counts = store.counts(engine)
    click.echo(f"Tagged {tagged['tagged']}/{tagged['items']} items, {n_claims} claims, {counts['findings']} findings.")
    click.echo(f"Site: {out / 'index.html'}")
    click.echo(f"Newsletter: {eml}")


@main.command()
@pass_state
def status(state: State) -> None:
    """Show the last ingest of every source, broken ones first; exit 1 if any is broken."""
    from digest import store

    runs = store.last_runs(state.engine)
    if not runs:
        click.echo("No ingest has run yet.")
        return
    runs.sort(key=lambda r: (r.status != "broken", r.source))
    for r in runs:
        line = f"{r.status:12} {r.source:28} {r.started_at:%Y-%m-%d %H:%M} new={r.new} updated={r.updated}"
        click.echo(line + (f"  {r.error}" if r.error else ""))
    broken = [r.source for r in runs if r.status == "broken"]
    if broken:
        raise DigestError(f"{len(broken)} source(s) broken: {', '.join(broken)}")


def _export_row(view) -> dict:
    item = view.item
    return {
        "id": item.id,
        "title": item.title,
        "url": item.url,
        "arxiv_id": item.arxiv_id,
        "source": item.source,
        "published": item.published.isoformat(),
        "authors": view.authors,
        "tags": [{"slug": s, "score": round(sc, 4)} for s, sc in view.tags],
        "claims": [{"value": c.value, "unit": c.unit, "kind": c.kind, "text": c.text} for c in view.claims],
        "coverage": [p.url for p in view.coverage],
    }


def _print_reports(reports) -> None:
    for r in reports:
        line = (
            f"{r.source:28} {r.status:12} new={r.new} updated={r.updated} unchanged={r.unchanged} ({r.duration_s:.2f}s)"
        )
        click.echo(line + (f"  {r.error}" if r.error else ""), err=r.status == "broken")


class _progress:
    """A rich progress bar on a terminal; quiet log lines otherwise."""

    def __enter__(self):
        if not sys.stderr.isatty():
            return lambda label, done, total: log.info("%s %d/%d", label, done, total)
        from rich.progress import Progress

        self._bar = Progress(transient=True)
        self._bar.start()
        self._tasks: dict[str, int] = {}

        def update(label: str, done: int, total: int) -> None:
            key = label.split()[0]
            if key not in self._tasks:
                self._tasks[key] = self._bar.add_task(label, total=total)
            self._bar.update(self._tasks[key], completed=done, total=total, description=label)

        return update

    def __exit__(self, *exc) -> None:
        if getattr(self, "_bar", None):
            self._bar.stop()


if __name__ == "__main__":  # pragma: no cover
    main()
