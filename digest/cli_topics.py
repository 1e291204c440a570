"""CLI for topic tagging."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli import State, _progress, eval_group, main, pass_state
from digest.errors import DigestError


@main.command()
@click.option("--explain", "explain_ref", metavar="ITEM", help="Show why ITEM (item id or arXiv id) gets its topics.")
@pass_state
def tag(state: State, explain_ref: str | None) -> None:
    """Embed new or changed items and tag every item with 0-3 topics."""
    from digest import pipeline
    from digest.embed import configured_embedder

    if explain_ref is not None:
        from digest import store

        if store.find_item(state.engine, explain_ref) is None:  # before the model loads
            raise DigestError(f"item {explain_ref!r} not found (give an item id, an arXiv id or an item key)")
    embedder = configured_embedder(state.config)
    if explain_ref is not None:
        _explain(*pipeline.explain_item(state.engine, state.config, embedder, explain_ref))
        return
    with _progress() as progress:
        result = pipeline.tag_items(state.engine, state.config, embedder, progress=progress)
    click.echo(f"Embedded {result['embedded']} new or changed items; {result['tagged']}/{result['items']} tagged.")


def _explain(item, rows: list[dict]) -> None:
    click.echo(f"{item.id} {item.key}: {item.title}")
    click.echo(f"{'topic':24} {'sim':>6} {'base':>6} {'kw':>5} {'score':>6}  chosen  evidence")
    for r in rows:
        evidence = []
        if r["keyword_hits"]:
            pairs = zip(r["keyword_hits"], r["keyword_specificity"], strict=True)
            evidence.append("keywords: " + ", ".join(f"{k} ({w:.2f})" for k, w in pairs))
        if r["tag_hits"]:
            evidence.append("tags: " + ", ".join(r["tag_hits"]))
        mark = "yes" if r["chosen"] else ""
        click.echo(
            f"{r['slug']:24} {r['similarity']:6.3f} {r['baseline']:6.3f} {r['keyword_evidence']:5.2f} "
            f"{r['score']:6.3f}  {mark:6}  " + "; ".join(evidence)
        )
    chosen = [r["slug"] for r in rows if r["chosen"]]
    click.echo(f"Chosen: {', '.join(chosen) if chosen else '(none: no topic fits well)'}")


@main.group("embed")
def embed_group() -> None:
    """Embedding models: build the derived fast models once, offline, from the bundled weights."""


@embed_group.command("prepare")
@click.option("--model", help="Model to build (default: [embed] model). Derived ones are cached in workspace/models.")
@pass_state
def embed_prepare(state: State, model: str | None) -> None:
    """Build (ONNX int8 export, static distillation) and check the configured model, so later runs start fast."""
    import time

    from digest.embed import load_embedder

    name = model or state.config.embed_model
    started = time.monotonic()
    embedder = load_embedder(name, state.config.workspace, state.config.embed_max_tokens)
    vec = embedder.encode(["Speculative decoding drafts tokens with a small model."])
    click.echo(f"{name}: ready ({vec.shape[1]} dims, {time.monotonic() - started:.1f}s)")


@main.group("topics")
def topics_group() -> None:
    """Emerging topics: clusters of items that fit no topic, and turning one into a taxonomy entry."""


@topics_group.command("suggest")
@click.option(
    "--threshold", type=float, help="Items whose best topic fit (score / the topic's bar, 1.0 = tagged) is under this."
)
@click.option("--distance", type=click.FloatRange(0.0, 2.0), help="Cosine distance under which clusters merge.")
@click.option("--min-size", type=click.IntRange(2, None), help="Smallest cluster shown (default 3).")
@pass_state
def topics_suggest(state: State, threshold: float | None, distance: float | None, min_size: int | None) -> None:
    """Cluster the items no topic fits and list each cluster with its distinctive terms."""
    import json

    from digest import pipeline
    from digest.embed import configured_embedder

    embedder = configured_embedder(state.config)
    with _progress() as progress:
        n_out, rows = pipeline.suggest_topics(
            state.engine, state.config, embedder, threshold, distance, min_size, progress=progress
        )
    click.echo(f"{n_out} items fit no topic well; {len(rows)} suggested topics.")
    for row in rows:
        click.echo(f"\n{row.id}  ({row.size} items)  {', '.join(json.loads(row.terms))}")
        for title in json.loads(row.titles)[:3]:
            click.echo(f"    - {title}")
    if rows:
        click.echo(f"\nAccept one with: digest topics accept {rows[0].id} --slug SLUG")


@topics_group.command("accept")
@click.argument("cluster")
@click.option("--slug", required=True, help="Slug of the new topic ([a-z0-9] words joined by '-').")
@click.option("--name", help="Display name (default: the cluster's top two terms).")
@pass_state
def topics_accept(state: State, cluster: str, slug: str, name: str | None) -> None:
    """Append suggested topic CLUSTER to the taxonomy file as a new [[topic]]."""
    from digest import pipeline

    path, block = pipeline.accept_suggestion(state.engine, state.config, cluster, slug, name)
    click.echo(f"Appended to {path}:\n\n{block}")
    click.echo("Edit its description and keywords if you like, then run `digest tag`.")


@eval_group.command("topics")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--topics", "topics_file", type=click.Path(dir_okay=False, path_type=Path), help="Taxonomy TOML to use.")
@click.option(
    "--split", type=click.Choice(["all", "dev", "test"]), default="all", show_default=True, help="Which items."
)
@pass_state
def eval_topics(state: State, file: Path, topics_file: Path | None, split: str) -> None:
    """Precision, recall and F1 per topic and micro-averaged on a labelled JSONL file."""
    from digest import topics as topics_mod
    from digest.embed import configured_embedder

    if not file.exists():
        raise DigestError(f"{file}: labelled topics file not found")
    taxonomy = topics_mod.load_topics(topics_file or state.config.topics_file)
    items = [i for i in topics_mod.load_eval(file) if split == "all" or i["split"] == split]
    if not items:
        raise DigestError(f"{file}: no labelled items in split {split!r}")
    embedder = configured_embedder(state.config)
    index = topics_mod.build_index(taxonomy, embedder.encode, embedder.name)
    texts = [topics_mod.item_text(i["title"], i["summary"]) for i in items]
    assigned = topics_mod.assign(index, embedder.encode(texts), texts, [i["tags"] for i in items])
    slugs = [t.slug for t in taxonomy]
    result = topics_mod.evaluate([set(i["gold"]) for i in items], [{s for s, _ in a} for a in assigned], slugs)
    click.echo(f"{'topic':28} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>4}")
    for slug in slugs:
        r = result["per_topic"][slug]
        click.echo(f"{slug:28} {r['precision']:6.3f} {r['recall']:6.3f} {r['f1']:6.3f} {r['support']:4d}")
    for avg in ("micro", "macro"):
        r = result[avg]
        click.echo(f"{avg + '-average':28} {r['precision']:6.3f} {r['recall']:6.3f} {r['f1']:6.3f} {len(items):4d}")
