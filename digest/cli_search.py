"""CLI for search and export."""

from __future__ import annotations

import json

import click

from digest.cli import State, _print_reports, _progress, main, pass_state  # noqa: F401
from digest.errors import DigestError


@main.command()
@click.argument("query", required=False, default="")
@click.option("--tag", "tags", multiple=True, help="Only items with this topic slug (repeatable; all must match).")
@click.option("--any-tag", "any_tags", multiple=True, help="Only items with at least one of these slugs (repeatable).")
@click.option("--source", "sources", multiple=True, help="Only items from this source name (repeatable).")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only items published on or after this date.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Only items published on or before this date.")
@click.option("--has-claims", is_flag=True, help="Only items with at least one extracted claim.")
@click.option("--reproduced", is_flag=True, help="Only items whose latest measured repro verdict is reproduced.")
@click.option("--semantic", "semantic", default="", help="Rank by meaning: cosine against this text's embedding.")
@click.option("--hybrid", is_flag=True, help="Use QUERY for both full text and --semantic, fused by rank.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000), help="Most results to show.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "jsonl", "bibtex"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (same as --format json).")
@click.option("--bibtex", "as_bibtex", is_flag=True, help="Print BibTeX @misc entries (same as --format bibtex).")
@pass_state
def search(
    state: State,
    query: str,
    tags: tuple[str, ...],
    any_tags: tuple[str, ...],
    sources: tuple[str, ...],
    since,
    until,
    has_claims: bool,
    reproduced: bool,
    semantic: str,
    hybrid: bool,
    limit: int,
    fmt: str,
    as_json: bool,
    as_bibtex: bool,
) -> None:
    """Find findings by full text (QUERY), meaning (--semantic) or both, narrowed by filters."""
    from digest import search as s

    if hybrid:
        if not query:
            raise DigestError("--hybrid needs a QUERY")
        semantic = semantic or query
    fmt = "json" if as_json else "bibtex" if as_bibtex else fmt
    q = s.Query(
        text=query,
        semantic=semantic,
        tags=list(tags),
        any_tags=list(any_tags),
        sources=list(sources),
        since=since.date() if since else None,
        until=until.date() if until else None,
        has_claims=has_claims,
        reproduced=reproduced,
        limit=limit,
    )
    if q.since and q.until and q.since > q.until:
        raise DigestError(f"--since {q.since} is after --until {q.until}")
    conn = s.connect(state.db_url or state.config.default_db_url)
    try:
        s.check_tags(conn, [*q.tags, *q.any_tags])  # before any model loads
        s.check_sources(conn, q.sources)
        embed, model, cache = None, "", None
        if q.semantic:
            from digest.embed import configured_model_name, query_vector

            config = state.config
            model, cache = configured_model_name(config), config.workspace / "cache"

            def embed(text: str):
                return query_vector(config, text, note=lambda msg: click.echo(f"note: {msg}", err=True))

        ranked = s.run(conn, q, embed=embed, model=model, cache_dir=cache)
        rows = s.fetch(conn, ranked, for_bibtex=fmt == "bibtex", repo_url=state.config.site.repo_url)
    finally:
        conn.close()
    if fmt == "bibtex":
        click.echo(s.bibtex(rows))
        return
    for row in rows:
        del row["summary"]
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
    elif fmt == "jsonl":
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
    elif not rows:
        click.echo("No results.")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("date", "title", "source", "tags", "headline", box=None)
        for r in rows:
            headline = r["headline"]["text"] if r["headline"] else ""
            tags_text = ", ".join(t["slug"] for t in r["tags"])
            table.add_row(r["published"][:10], r["title"], r["source"], tags_text, headline)
        Console().print(table)


@main.command()
@click.option("--week", help="Week to compare, e.g. 2026-W47 (default: the latest week with tagged findings).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_state
def tags(state: State, week: str | None, as_json: bool) -> None:
    """List tags with their counts and trend: this week against the average of the four before."""
    from datetime import UTC, datetime, timedelta

    from digest import search as s

    conn = s.connect(state.db_url or state.config.default_db_url)
    try:
        if week:
            from digest.pipeline import parse_week

            start = parse_week(week)[0]
        else:
            start = s.latest_week_start(conn)
            if start is None:  # nothing tagged yet: this week
                today = datetime.now(UTC).date()
                start = today - timedelta(days=today.weekday())
        rows = s.tag_trends(conn, start)
    finally:
        conn.close()
    for r in rows:
        diff = r["this_week"] - r["avg_4w"]
        r["trend"] = "up" if diff > 0 else "down" if diff < 0 else "flat"
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo("No tags yet.")
        return
    from rich.console import Console
    from rich.table import Table

    arrows = {"up": "↑", "down": "↓", "flat": "→"}
    iso = start.isocalendar()
    table = Table("tag", "findings", f"{iso.year}-W{iso.week:02d}", "avg 4 weeks before", "trend", box=None)
    for r in rows:
        table.add_row(r["tag"], str(r["count"]), str(r["this_week"]), f"{r['avg_4w']:g}", arrows[r["trend"]])
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
        click.echo(json.dumps(_export_row(view, state.config.site.repo_url), ensure_ascii=False))


def _export_row(view, repo_url: str = "") -> dict:
    from digest.search import summary_fields
    from digest.verdicts import claim_json, claim_verdict

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
        "claims": [claim_json(c, claim_verdict(view, c, repo_url)) for c in view.claims],
        "coverage": [p.url for p in view.coverage],
        **summary_fields(view.claims, item.summary, item.title),
    }


@main.command("migrate-db")
@click.option("--to", "to_url", required=True, help="SQLAlchemy URL of the new, empty database to copy into.")
@pass_state
def migrate_db(state: State, to_url: str) -> None:
    """Copy every table of the current database into another (e.g. SQLite to PostgreSQL)."""
    from digest import store

    target = store.open_engine(to_url)
    try:
        copied = store.copy_database(state.engine, target)
    finally:
        target.dispose()
    for name, n in copied.items():
        click.echo(f"{name:14} {n} rows")
    shown = target.url.render_as_string(hide_password=True)
    click.echo(f"Copied {sum(copied.values())} rows in {len(copied)} tables to {shown}")
