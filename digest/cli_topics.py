"""CLI for topic tagging."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli import State, _progress, eval_group, main, pass_state
from digest.errors import DigestError


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
    from digest.embed import load_embedder

    if not file.exists():
        raise DigestError(f"{file}: labelled topics file not found")
    taxonomy = topics_mod.load_topics(topics_file or state.config.topics_file)
    items = [i for i in topics_mod.load_eval(file) if split == "all" or i["split"] == split]
    if not items:
        raise DigestError(f"{file}: no labelled items in split {split!r}")
    embedder = load_embedder(state.config.embed_model)
    index = topics_mod.build_index(taxonomy, embedder.encode)
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
