"""CLI for the reader's library, recommendations and similar papers (issue #16)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from digest.cli import State, eval_group, main, pass_state
from digest.errors import DigestError


@main.group("library")
def library_group() -> None:
    """Your own papers: import a BibTeX/RIS/CSL JSON export or a list of arXiv ids; recommendations use them."""


@library_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["bibtex", "ris", "csl", "list"]), help="Default: from the file.")
@pass_state
def library_import(state: State, file: Path, fmt: str | None) -> None:
    """Add every entry of FILE (BibTeX, RIS, CSL JSON, or one arXiv id/URL or DOI per line) to the library."""
    from digest.library import read_library
    from digest.library_store import save_records

    records = read_library(file, fmt)  # bad files fail here, before any model loads
    if not records:
        raise DigestError(f"{file}: no entries found")
    report = save_records(state.engine, records, file.name, *_embedder(state))
    click.echo(
        f"Imported {report.added} new entries from {file} ({report.already} already in the library): "
        f"{report.matched} are stored findings, {report.own_text} kept with their own text, "
        f"{report.no_text} known only by id (they count once their paper is stored)."
    )


def _embedder(state: State):
    """(embed, model name), the model loaded only when called."""
    from digest.embed import configured_embedder, configured_model_name

    config = state.config
    loaded = []

    def embed(texts: list[str]):
        if not loaded:
            loaded.append(configured_embedder(config))
        return loaded[0].encode(texts)

    return embed, configured_model_name(config)


@library_group.command("add")
@click.argument("item")
@pass_state
def library_add(state: State, item: str) -> None:
    """Add one paper by arXiv id, arXiv URL or DOI."""
    from digest.library import parse_item
    from digest.library_store import find, save_records
    from digest.store import find_item

    record = parse_item(item)
    if find(state.engine, record.key):
        click.echo(f"Already in the library: {item}")
        return
    save_records(state.engine, [record], "add")
    found = find_item(state.engine, record.arxiv_id) if record.arxiv_id else None
    click.echo(f"Added {item}" + (f": {found.title}" if found else " (not stored yet: it counts once ingested)"))


@library_group.command("remove")
@click.argument("item")
@pass_state
def library_remove(state: State, item: str) -> None:
    """Remove one entry by its id (see `library list`), arXiv id, arXiv URL or DOI."""
    from digest.library_store import remove

    row = remove(state.engine, item)
    click.echo(f"Removed {row.key}" + (f": {row.title}" if row.title else ""))


@library_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_state
def library_list(state: State, as_json: bool) -> None:
    """Every library entry, with the stored finding it matched."""
    from digest.library_store import entries_with_findings

    out = [
        {
            "id": r.id,
            "key": r.key,
            "title": r.title or (item.title if item else ""),
            "arxiv_id": r.arxiv_id,
            "doi": r.doi,
            "year": r.year,
            "item_id": item.id if item else None,
            "has_vector": r.vector is not None,
            "origin": r.origin,
        }
        for r, item in entries_with_findings(state.engine)
    ]
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, indent=1))
        return
    if not out:
        click.echo("The library is empty: `digest library import FILE` or `digest library add ARXIV_ID`.")
        return
    click.echo(f"{'id':>5}  {'matched':7}  key / title")
    for r in out:
        state_word = "finding" if r["item_id"] else "text" if r["has_vector"] else "id only"
        click.echo(f"{r['id']:>5}  {state_word:7}  {r['key']}" + (f"  {r['title'][:70]}" if r["title"] else ""))


# --- recommend and similar: the search fast path (stdlib sqlite3 + numpy, never torch) -------------------------


def _model(state: State) -> str:
    from digest.embed import configured_model_name

    return configured_model_name(state.config)


@main.command()
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only findings published on or after this date.")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 1000), help="Most picks to show.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (export fields plus score and because).")
@pass_state
def recommend(state: State, since, limit: int, as_json: bool) -> None:
    """Findings not in your library, ranked by how well they match it, each with the papers it resembles."""
    from digest import search as s
    from digest.foryou import because_text, recommendations

    conn = s.connect(state.db_url or state.config.default_db_url)
    try:
        picks = recommendations(conn, _model(state), state.config.workspace / "cache", limit, since)
        found = {r["id"]: r for r in s.fetch(conn, [(p.item_id, p.score) for p in picks])}
    finally:
        conn.close()
    out = []
    for p in picks:
        row = found.get(p.item_id)
        if row is None:
            continue
        row.pop("summary", None)
        row["because"] = p.because
        out.append(row)
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, indent=1))
        return
    if not out:
        click.echo("No findings to recommend" + (f" since {since.date()}" if since else "") + ".")
        return
    for n, row in enumerate(out, start=1):
        click.echo(f"{n:>2}. {row['published'][:10]}  {row['title']}  ({row['url'] or row['arxiv_id'] or ''})")
        click.echo(f"    {because_text(row['because'])}")


@main.command()
@click.argument("item")
@click.option("--limit", default=5, show_default=True, type=click.IntRange(1, 100), help="How many.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (export fields plus score).")
@pass_state
def similar(state: State, item: str, limit: int, as_json: bool) -> None:
    """The findings nearest to ITEM (an arXiv id or URL, or a finding's id) by embedding."""
    from digest import recommend as rec
    from digest import search as s
    from digest.foryou import vectors
    from digest.library import arxiv_from

    conn = s.connect(state.db_url or state.config.default_db_url)
    try:
        item_id = _item_id(conn, item, arxiv_from(item))
        ids, mat = vectors(conn, _model(state), state.config.workspace / "cache")
        where = {int(i): n for n, i in enumerate(ids)}.get(item_id)
        if where is None:
            raise DigestError(f"{item!r} has no stored vector yet; run `digest tag`")
        near = rec.similar(mat, where, limit)
        rows = s.fetch(conn, [(int(ids[r]), sim) for r, sim in near])
    finally:
        conn.close()
    for row in rows:
        row.pop("summary", None)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    for row in rows:
        click.echo(f"{row['score']:.3f}  {row['published'][:10]}  {row['title']}")


def _item_id(conn, ref: str, arxiv_id: str | None) -> int:
    """A finding's id from a database id or an arXiv id; an error naming `ref` when there is none."""
    from digest.store import row_id

    if arxiv_id:
        rows = conn.rows(
            "SELECT id FROM item WHERE arxiv_id = :a AND covers_item_id IS NULL ORDER BY id", {"a": arxiv_id}
        )
    elif row_id(ref) is not None:
        rows = conn.rows("SELECT id FROM item WHERE id = :i", {"i": row_id(ref)})
    else:
        raise DigestError(f"{ref!r} is not an arXiv id, arXiv URL or finding id")
    if not rows:
        raise DigestError(f"{ref!r}: no such finding in the database")
    return int(rows[0][0])


@eval_group.command("recommend")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--library-size", default=3, show_default=True, type=click.IntRange(1, 50), help="Papers per library.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@pass_state
def eval_recommend(state: State, file: Path, library_size: int, as_json: bool) -> None:
    """Precision@10 of `recommend` per topic of a labelled topics file: the first papers of a topic are the
    library, the picks should be of that topic."""
    from digest import topics as topics_mod
    from digest.embed import configured_embedder
    from digest.recommend import evaluate

    if not file.exists():
        raise DigestError(f"{file}: labelled topics file not found")
    items = topics_mod.load_eval(file)
    if not items:
        raise DigestError(f"{file}: no labelled items")
    embedder = configured_embedder(state.config)
    vecs = embedder.encode([topics_mod.item_text(i["title"], i["summary"]) for i in items])
    result = evaluate(vecs, [set(i["gold"]) for i in items], library_size)
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    click.echo(f"{'topic':28} {'p@10':>6} {'library':>7}")
    for slug, r in result["per_topic"].items():
        click.echo(f"{slug:28} {r['precision_at_10']:6.2f} {r['library']:7d}")
    click.echo(f"{'mean':28} {result['mean_precision_at_10']:6.2f}")
