"""Incremental embedding: only new or changed items, and only changed topic prototypes, reach the encoder."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from digest import pipeline, store
from digest.config import load_config
from digest.embed import HashEmbedder
from digest.parse import Entry
from digest.topics import item_text, load_topics, prototype_texts
from tests.conftest import ROOT, write_config

EVAL = [json.loads(line) for line in (ROOT / "tests/data/topics_eval.jsonl").read_text().splitlines() if line.strip()]


class CountingEmbedder(HashEmbedder):
    """The real fake embedder, recording every batch of texts it is asked to encode."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    @property
    def texts(self) -> list[str]:
        return [t for call in self.calls for t in call]

    def encode(self, texts):
        self.calls.append(list(texts))
        return super().encode(texts)


def entry(i: int, item: dict, summary: str | None = None) -> Entry:
    return Entry(
        key=f"arxiv:2611.{i:05d}",
        title=item["title"],
        url=f"https://arxiv.org/abs/2611.{i:05d}",
        summary=item["summary"] if summary is None else summary,
        kind="paper",
        published=datetime(2026, 11, 2 + i % 20),
        arxiv_id=f"2611.{i:05d}",
        arxiv_version=1,
        tags=item.get("tags", []),
    )


@pytest.fixture
def setup(tmp_path, db):
    cfg = load_config(write_config(tmp_path, ""))
    engine = store.open_engine(db.url)
    store.init_db(engine)
    store.save_entries(engine, "arxiv-test", [entry(i, it) for i, it in enumerate(EVAL[:12])])
    yield cfg, engine
    engine.dispose()


def test_second_run_encodes_nothing_and_a_changed_item_alone_is_reembedded(setup, db):
    cfg, engine = setup
    emb = CountingEmbedder()
    first = pipeline.tag_items(engine, cfg, emb)
    assert first["embedded"] == 12
    n_proto = sum(len(prototype_texts(t)) for t in load_topics(cfg.topics_file))
    assert len(emb.texts) == 12 + n_proto
    assert db.one("SELECT count(*) FROM embedding") == 12

    emb.calls.clear()
    assert pipeline.tag_items(engine, cfg, emb)["embedded"] == 0
    assert emb.calls == []  # items and prototypes both came from the store

    changed = entry(3, EVAL[3], summary="A rewritten abstract about KV cache eviction.")
    store.save_entries(engine, "arxiv-test", [changed])
    emb.calls.clear()
    assert pipeline.tag_items(engine, cfg, emb)["embedded"] == 1
    assert emb.texts == [item_text(EVAL[3]["title"], "A rewritten abstract about KV cache eviction.")]


def test_taxonomy_change_reembeds_only_the_changed_topics(setup, db):
    cfg, engine = setup
    emb = CountingEmbedder()
    pipeline.tag_items(engine, cfg, emb)
    path = Path(cfg.topics_file)
    path.write_text(
        path.read_text().replace("Compressing, sharing and managing", "Evicting and compressing")
        + '\n[[topic]]\nslug = "moe"\nname = "Mixture of experts"\n'
        'description = "Routing tokens to sparse experts."\nkeywords = ["mixture of experts", "router"]\n'
    )
    topics = {t.slug: t for t in load_topics(path)}
    emb.calls.clear()
    result = pipeline.tag_items(engine, cfg, emb)
    assert result["embedded"] == 0
    # The new topic's two prototypes and the edited description; no item text, no unchanged prototype.
    assert sorted(emb.texts) == sorted([*prototype_texts(topics["moe"]), prototype_texts(topics["kv-cache"])[0]])
    assert db.one("SELECT count(*) FROM topic") == 4
