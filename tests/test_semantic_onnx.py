"""Semantic search without torch (issue #16 point 5): the query is embedded by the int8 ONNX export and ranked
against the stored fp32 vectors; the ranking agrees with the fp32 query's on the labelled abstracts."""

from __future__ import annotations

import json
import tomllib
from datetime import datetime

import numpy as np
import pytest

from digest import embed, store
from digest.models import Embedding
from digest.parse import Entry
from digest.topics import item_text, load_eval
from tests.conftest import ROOT, heavy_imports_of, write_config

pytestmark = pytest.mark.slow
NOW = datetime(2026, 12, 1)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The ONNX export in a workspace, the labelled abstracts' fp32 vectors and the topic queries."""
    pytest.importorskip("onnxruntime")
    ws = tmp_path_factory.mktemp("ws")
    embed.ensure_onnx(embed.models_dir(ws))
    items = load_eval(ROOT / "tests" / "data" / "topics_eval.jsonl")
    topics = tomllib.loads((ROOT / "data" / "topics.toml").read_text())["topic"]
    queries = [f"{t['name']}: {t['description']}" for t in topics]
    fp32 = embed.SentenceTransformerEmbedder(device="cpu")
    return ws, items, fp32.encode([item_text(i["title"], i["summary"]) for i in items]), queries, fp32.encode(queries)


def test_onnx_queries_rank_like_fp32_queries(built):
    ws, _, docs, queries, fp32_q = built
    onnx = embed.OnnxEmbedder(embed.onnx_ready(ws), batch_size=1, threads=1)
    int8_q = onnx.encode(queries)
    assert (int8_q * fp32_q).sum(axis=1).min() >= embed.MIN_COSINE
    overlaps = []
    for a, b in zip(fp32_q, int8_q, strict=True):
        top_a, top_b = set(np.argsort(-(docs @ a))[:10]), set(np.argsort(-(docs @ b))[:10])
        overlaps.append(len(top_a & top_b))
    assert np.mean(overlaps) >= 9 and min(overlaps) >= 8, overlaps


def test_semantic_search_cli_never_imports_torch(built, db, tmp_path):
    ws, items, docs, _, _ = built
    engine = store.open_engine(db.url)
    store.init_db(engine)
    entries = [
        Entry(
            key=f"k:{i['id']}", title=i["title"], url=f"https://e.test/{i['id']}", summary=i["summary"], published=NOW
        )
        for i in items
    ]
    store.save_entries(engine, "eval", entries)
    ids = {k.split("|", 1)[-1]: i for k, i in db.rows("SELECT key, id FROM item")}  # keys are per source
    with store.session(engine) as s:
        for i, vec in zip(items, docs, strict=True):
            s.add(
                Embedding(
                    item_id=ids[f"k:{i['id']}"], model=embed.MINILM, content_hash="h", dim=384, vector=vec.tobytes()
                )
            )
        s.commit()
    engine.dispose()
    cfg = write_config(tmp_path, "")
    cfg.write_text(
        cfg.read_text()
        .replace('model = "fake-hash-64"', 'model = "all-MiniLM-L6-v2"')
        .replace('workspace = "ws"', f'workspace = "{ws}"')
    )
    proc, heavy = heavy_imports_of(cfg, ["search", "--semantic", "sparse autoencoder features", "--json"])
    assert "torch" not in heavy and "loading the model" not in proc.stderr
    rows = json.loads(proc.stdout)
    top = next(i for i in items if i["title"] == rows[0]["title"])
    assert len(rows) == 20 and "interpretability" in top["gold"]
