"""CLI for search and export."""

from __future__ import annotations

import json

import click

from digest.cli import State, _print_reports, _progress, main, pass_state  # noqa: F401
from digest.errors import DigestError  # noqa: F401


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
