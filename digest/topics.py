"""Topic tagging: sentence-embedding similarity plus keyword and source-tag evidence.

The taxonomy lives in ``data/topics.toml``. Each topic is represented by a few
prototype embeddings (its description, its keyword list, its example titles).
An item (title + summary) is scored against every topic as

    score = similarity + KEYWORD_WEIGHT * keyword_evidence + TAG_WEIGHT * tag_evidence

where ``similarity`` is the mean cosine similarity of the item to the topic's
prototypes (or of the best ``TOP_K_PROTOTYPES``), ``keyword_evidence`` in [0, 1] grows with the number of
distinct topic keywords found on word boundaries in the text (hits in the
title, i.e. the first line, count ``TITLE_WEIGHT`` times; with the calibrated
``KEYWORD_SATURATION`` of 1.0 a single hit already gives full evidence), and ``tag_evidence``
is 1 when one of the item's source tags (a blog's own tags) names the topic.
A topic is chosen when its score reaches ``MIN_SCORE`` and lies within
``MARGIN`` of the item's best score; at most ``max_tags`` are returned.

This module only needs numpy: the caller supplies ``encode`` (texts -> L2
normalised float32 rows), so no torch import happens here.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digest.blas import one_thread as _one_blas_thread
from digest.errors import ConfigError

# --- Calibrated constants -------------------------------------------------
# Calibrated on the dev split of tests/data/topics_eval.jsonl (124 items; grid
# search over all the constants below, picking the centre of the flattest
# high-F1 region, all-MiniLM-L6-v2 embeddings) on 2026-11-25. The test split
# was not used. See /tmp/topics_report.md for the numbers.
TOP_K_PROTOTYPES: int | None = None  # similarity = mean of the best k prototypes; None = all
KEYWORD_WEIGHT = 0.25  # weight of keyword evidence (0..1) in the final score
KEYWORD_SATURATION = 1.0  # weighted hits at which evidence saturates (1.0: any hit counts fully)
TITLE_WEIGHT = 2.0  # a keyword hit in the title (first line) counts this much
TAG_WEIGHT = 0.10  # bonus when a source tag names the topic
MIN_SCORE = 0.43  # absolute score a topic needs to be chosen
MARGIN = 0.23  # ... and it must be within this of the item's best score
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """The constants that turn similarities and evidence into tags; they depend on the embedding model."""

    keyword_weight: float = KEYWORD_WEIGHT
    tag_weight: float = TAG_WEIGHT
    min_score: float = MIN_SCORE
    margin: float = MARGIN


# Per-model calibrations, each found by grid search on the dev split only (the test split was held out).
# The static model2vec vectors have a different similarity scale (higher baseline), so they need
# their own thresholds: dev 0.879 / test 0.890 micro-F1 with these, 0.812 with MiniLM's.
CALIBRATIONS = {
    "all-MiniLM-L6-v2-static": Calibration(keyword_weight=0.15, tag_weight=0.10, min_score=0.56, margin=0.30),
}


def calibration(model: str) -> Calibration:
    """The calibration for an embedding model name (MiniLM's constants by default, also for its ONNX twin)."""
    return CALIBRATIONS.get(model, Calibration())


SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_ALLOWED_FIELDS = ("slug", "name", "description", "keywords", "examples")
_SEPARATORS = re.compile(r"[-_/\u2010-\u2015]+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Topic:
    slug: str
    name: str
    description: str
    keywords: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()


@dataclass
class TopicIndex:
    """Prototype embeddings of a topic list; ``owner[i]`` is the topic index of row i."""

    topics: list[Topic]
    vectors: np.ndarray  # (n_prototypes, dim), L2-normalised float32
    owner: np.ndarray  # (n_prototypes,) int
    calib: Calibration = Calibration()

    def __post_init__(self) -> None:
        self._matchers = [_TopicMatcher(t) for t in self.topics]
        self._keywords = _KeywordIndex(self._matchers)
        self._tag_topics: dict[str, list[int]] = {}

    def tag_topics(self, tag: str) -> list[int]:
        """Indices of the topics a source tag names (cached: feeds repeat the same few tags)."""
        if tag not in self._tag_topics:
            self._tag_topics[tag] = [t for t, m in enumerate(self._matchers) if m.names(tag)]
        return self._tag_topics[tag]


# --- Loading ----------------------------------------------------------------


def load_topics(path: Path) -> list[Topic]:
    """Read and validate a topics TOML file; raise ConfigError naming file, entry and field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read topics file ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    entries = data.get("topic")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: field 'topic' missing: expected one or more [[topic]] tables")

    topics: list[Topic] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: [[topic]] #{number}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: field 'topic' must be a table")
        slug = entry.get("slug")
        if isinstance(slug, str) and slug:
            where += f" (slug {slug!r})"
        for key in entry:
            if key not in _ALLOWED_FIELDS:
                raise ConfigError(f"{where}: field {key!r} unknown (allowed: {', '.join(_ALLOWED_FIELDS)})")
        for key in ("slug", "name", "description"):
            value = entry.get(key)
            if value is None:
                raise ConfigError(f"{where}: field {key!r} missing")
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where}: field {key!r} must be a non-empty string")
        if not SLUG_RE.match(slug):
            raise ConfigError(f"{where}: field 'slug' must match [a-z0-9-] words joined by single hyphens")
        if slug in seen:
            raise ConfigError(f"{where}: field 'slug' duplicates [[topic]] #{seen[slug]}")
        seen[slug] = number
        lists = {}
        for key in ("keywords", "examples"):
            value = entry.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise ConfigError(f"{where}: field {key!r} must be a list of non-empty strings")
            lists[key] = tuple(v.strip() for v in value)
        topics.append(
            Topic(
                slug=slug,
                name=entry["name"].strip(),
                description=" ".join(entry["description"].split()),
                keywords=tuple(k.lower() for k in lists["keywords"]),
                examples=lists["examples"],
            )
        )
    return topics


# --- Prototypes and index ---------------------------------------------------


def prototype_texts(topic: Topic) -> list[str]:
    """Texts whose embeddings represent the topic: description, keyword list, example titles."""
    texts = [f"{topic.name}: {topic.description}"]
    if topic.keywords:
        texts.append(f"{topic.name}: {', '.join(topic.keywords)}")
    texts.extend(topic.examples)
    return texts


def build_index(topics: list[Topic], encode: Callable[[list[str]], np.ndarray], model: str = "") -> TopicIndex:
    """Embed every topic's prototype texts with ``encode`` (returns L2-normalised rows) from embedding ``model``."""
    if not topics:
        raise ValueError("build_index needs at least one topic")
    texts: list[str] = []
    owner: list[int] = []
    for i, topic in enumerate(topics):
        for text in prototype_texts(topic):
            texts.append(text)
            owner.append(i)
    vectors = _as_unit_rows(encode(texts))
    if vectors.shape[0] != len(texts):
        raise ValueError(f"encode returned {vectors.shape[0]} rows for {len(texts)} texts")
    return TopicIndex(
        topics=list(topics), vectors=vectors, owner=np.asarray(owner, dtype=np.int64), calib=calibration(model)
    )


def item_text(title: str, summary: str = "") -> str:
    """The text to embed and pass to assign(): title on the first line, then the summary."""
    title = " ".join(title.split())
    summary = " ".join(summary.split())
    return f"{title}\n{summary}" if summary else title


# --- Evidence ------------------------------------------------------------------


def _normalise(text: str) -> str:
    return _SPACES.sub(" ", _SEPARATORS.sub(" ", text.lower())).strip()


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in _normalise(phrase).split(" ") if w]
    # Word boundaries on both sides; a suffix s, es, ing or ed on the last word is allowed.
    return re.compile(r"(?<![a-z0-9])" + r"\s+".join(words) + r"(?:s|es|ing|ed)?(?![a-z0-9])")


_RUN = re.compile(r"[a-z0-9]+")
_SUFFIXES = ("", "s", "es", "ing", "ed")
# Lower-cased ASCII to keyword text: [a-z0-9] stays, whitespace and separators become " ", any other character "|".
_TOKEN_TABLE = {
    c: chr(c) if _RUN.fullmatch(chr(c)) else " " if _SEPARATORS.fullmatch(chr(c)) or chr(c).isspace() else "|"
    for c in range(128)
}
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_SPACE_RUNS = re.compile(r"  +")
_BOUNDS = (" ", "|")


def _keyword_text(text: str) -> str:
    """Lower-cased text as runs of [a-z0-9] between " " (whitespace, separators) and "|" (any other character).

    Runs of spaces become one, so a keyword matches the normalised text on word boundaries iff
    "w1 w2 last+suffix" occurs here between two of " ", "|" (or the padded ends).
    """
    text = text.lower()
    if not text.isascii():
        text = _NON_ASCII.sub(lambda m: " " if _SEPARATORS.match(m[0]) or m[0].isspace() else "|", text)
    text = text.translate(_TOKEN_TABLE)
    return _SPACE_RUNS.sub(" ", text) if "  " in text else text


class _KeywordIndex:
    """Every topic's keywords in one Aho-Corasick automaton (ahocorasick-rs, Rust), for one exact pass over all texts.

    Each keyword form ("w1 w2 last" plus an optional suffix on the last word) is stored with a
    boundary character (" " or "|") on each side, and each text is mapped by ``_keyword_text`` so that
    a form occurs there exactly where the keyword's ``_phrase_pattern`` matches the normalised text.
    All texts are joined (ASCII by then) and searched in one pass over their bytes; the matches are
    mapped to (text, keyword) pairs, title or body, with numpy: no per-word Python objects. Keywords with other
    characters (``slow``; none in the default taxonomy) use their regex. Same hits as trying every
    keyword's ``_phrase_pattern`` on every text (tests check this on the eval set and awkward texts).
    """

    def __init__(self, matchers: list[_TopicMatcher]) -> None:
        import itertools

        from ahocorasick_rs import BytesAhoCorasick

        self._chain = itertools.chain.from_iterable
        pair_ids: dict[tuple[int, int], int] = {}  # (topic, keyword) -> pair id
        forms: dict[str, list[int]] = {}  # bounded form -> pair ids
        self.slow: list[tuple[int, int]] = []
        for t, matcher in enumerate(matchers):
            for k, (kw, _) in enumerate(matcher.keywords):
                words = _normalise(kw).split(" ")
                if not all(_RUN.fullmatch(w) for w in words):
                    self.slow.append((t, k))
                    continue
                pid = pair_ids.setdefault((t, k), len(pair_ids))
                for suffix in _SUFFIXES:
                    form = " ".join(words) + suffix
                    for left in _BOUNDS:
                        for right in _BOUNDS:
                            ids = forms.setdefault(left + form + right, [])
                            if pid not in ids:
                                ids.append(pid)
        self.pairs = list(pair_ids)
        self.pair_topic = np.array([t for t, _ in self.pairs], dtype=np.int64)
        self.pair_keyword = np.array([k for _, k in self.pairs], dtype=np.int64)
        self.automaton = BytesAhoCorasick([form.encode() for form in forms]) if forms else None
        # form number -> its pair ids, as CSR arrays
        self.form_ptr = np.zeros(len(forms) + 1, dtype=np.int64)
        np.cumsum([len(ids) for ids in forms.values()], out=self.form_ptr[1:])
        self.form_pairs = np.array([pid for ids in forms.values() for pid in ids], dtype=np.int64)

    def matches(self, matchers: list[_TopicMatcher], texts: Sequence[str]) -> tuple[np.ndarray, ...]:
        """(text, topic, keyword, weight) arrays, one entry per keyword found in a text; title hits weigh
        TITLE_WEIGHT (the title is the text's first line)."""
        rows = np.zeros(0, dtype=np.int64)
        pairs = np.zeros(0, dtype=np.int64)
        weights = np.zeros(0, dtype=np.float32)
        if self.automaton is not None and len(texts):
            parts, title_ends = [], []
            for text in texts:
                title, _, body = text.partition("\n")
                head = f" {_keyword_text(title)}"
                title_ends.append(len(head))  # the "|" after the title: a title hit ends at or before it
                parts.append(f"{head}|{_keyword_text(body)} ")
            starts = np.zeros(len(parts) + 1, dtype=np.int64)
            np.cumsum(np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)), out=starts[1:])
            found = self.automaton.find_matches_as_indexes("".join(parts).encode("ascii"), overlapping=True)
            found = np.fromiter(self._chain(found), dtype=np.int64, count=3 * len(found)).reshape(-1, 3)
            form, ends = found[:, 0], found[:, 2] - 1  # (form, start, end) -> the form's last character
            text_of = np.searchsorted(starts, ends, side="right") - 1
            in_title = ends - starts[text_of] <= np.asarray(title_ends, dtype=np.int64)[text_of]
            counts = self.form_ptr[form + 1] - self.form_ptr[form]  # pairs per form (mostly 1)
            match = np.repeat(np.arange(len(form)), counts)
            within = np.arange(len(match)) - np.repeat(np.cumsum(counts) - counts, counts)
            key = text_of[match] * len(self.pairs) + self.form_pairs[self.form_ptr[form][match] + within]
            keys = np.unique(key)
            rows, pairs = np.divmod(keys, len(self.pairs))
            weights = np.where(np.isin(keys, key[in_title[match]]), TITLE_WEIGHT, 1.0).astype(np.float32)
        topic, keyword = (self.pair_topic[pairs], self.pair_keyword[pairs]) if len(self.pairs) else (pairs, pairs)
        if self.slow:
            extra = []
            for i, text in enumerate(texts):
                title, _, body = text.partition("\n")
                title_n, body_n = _normalise(title), _normalise(body)
                for t, k in self.slow:
                    pattern = matchers[t].keywords[k][1]
                    if pattern.search(title_n):
                        extra.append((i, t, k, TITLE_WEIGHT))
                    elif pattern.search(body_n):
                        extra.append((i, t, k, 1.0))
            if extra:
                r, t, k, w = (np.asarray(col) for col in zip(*extra, strict=True))
                rows, topic, keyword = (
                    np.concatenate([rows, r]),
                    np.concatenate([topic, t]),
                    np.concatenate([keyword, k]),
                )
                weights = np.concatenate([weights, w.astype(np.float32)])
        return rows, topic, keyword, weights

    def hits(self, matchers: list[_TopicMatcher], text: str) -> list[tuple[int, int, float]]:
        """(topic, keyword, weight) per keyword found in one item text."""
        _, topic, keyword, weights = self.matches(matchers, [text])
        return list(zip(topic.tolist(), keyword.tolist(), weights.tolist(), strict=True))


class _TopicMatcher:
    """Keyword and source-tag matching for one topic."""

    def __init__(self, topic: Topic) -> None:
        self.keywords = [(kw, _phrase_pattern(kw)) for kw in topic.keywords if _normalise(kw)]
        names = {topic.slug, topic.name, topic.name.split("(")[0], *topic.keywords}
        self.tag_patterns = [_phrase_pattern(n) for n in names if _normalise(n)]

    def names(self, tag: str) -> bool:
        """Whether a source tag names this topic (equals or contains its name or a keyword)."""
        norm = _normalise(tag)
        return any(p.search(norm) for p in self.tag_patterns)


# --- Scoring -------------------------------------------------------------------


def _as_unit_rows(vecs: np.ndarray) -> np.ndarray:
    arr = np.asarray(vecs, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return arr / np.maximum(norms, 1e-12)


def topic_similarity(index: TopicIndex, vecs: np.ndarray, top_k: int | None = TOP_K_PROTOTYPES) -> np.ndarray:
    """(n_items, n_topics): mean of each item's ``top_k`` best cosine similarities per topic.

    ``top_k=None`` averages over all of the topic's prototypes (their centroid direction).
    """
    with _one_blas_thread():
        sims = _as_unit_rows(vecs) @ index.vectors.T  # (n_items, n_prototypes)
    out = np.empty((sims.shape[0], len(index.topics)), dtype=np.float32)
    for t in range(len(index.topics)):
        cols = sims[:, index.owner == t]
        k = cols.shape[1] if top_k is None else max(1, min(top_k, cols.shape[1]))
        out[:, t] = np.sort(cols, axis=1)[:, -k:].mean(axis=1)
    return out


_CHUNK = 4096  # texts searched per keyword pass: about 6 MB of joined text for abstracts


def evidence(
    index: TopicIndex,
    texts: Sequence[str],
    source_tags: Sequence[Sequence[str]] | None = None,
    with_hits: bool = True,
) -> tuple[np.ndarray, np.ndarray, list[list[tuple[int, int, float]]]]:
    """Weighted keyword-hit counts and tag indicators, both (n_items, n_topics), plus each item's
    (topic, keyword, weight) hits (empty lists unless ``with_hits``)."""
    n, m = len(texts), len(index.topics)
    if source_tags is not None and len(source_tags) != n:
        raise ValueError(f"source_tags has {len(source_tags)} entries for {n} texts")
    kw = np.zeros((n, m), dtype=np.float32)
    hits: list[list[tuple[int, int, float]]] = [[] for _ in range(n)]
    for start in range(0, n, _CHUNK):  # a bounded joined text per pass, however many items
        rows, topic, keyword, weights = index._keywords.matches(index._matchers, texts[start : start + _CHUNK])
        rows += start
        np.add.at(kw, (rows, topic), weights)
        if with_hits:
            for i, t, k, w in zip(rows.tolist(), topic.tolist(), keyword.tolist(), weights.tolist(), strict=True):
                hits[i].append((t, k, w))
    tag = np.zeros((n, m), dtype=np.float32)
    for i, tags in enumerate(source_tags or ()):
        for name in tags:
            tag[i, index.tag_topics(name)] = 1.0
    return kw, tag, hits


def combine(
    sim: np.ndarray,
    kw_weighted: np.ndarray,
    tag: np.ndarray,
    keyword_weight: float = KEYWORD_WEIGHT,
    saturation: float = KEYWORD_SATURATION,
    tag_weight: float = TAG_WEIGHT,
) -> np.ndarray:
    """Final scores from similarity, weighted keyword hits and tag indicators."""
    return sim + keyword_weight * np.minimum(kw_weighted / saturation, 1.0) + tag_weight * tag


def select(
    scores: np.ndarray, max_tags: int = 3, min_score: float = MIN_SCORE, margin: float = MARGIN
) -> list[list[int]]:
    """Per row, topic indices chosen (best first): score >= min_score and >= best - margin."""
    if not scores.shape[1]:
        return [[] for _ in scores]
    order = np.argsort(-scores, axis=1, kind="stable")
    ok = (scores >= min_score) & (scores >= scores.max(axis=1, keepdims=True) - margin)
    ok = np.take_along_axis(ok, order, axis=1)
    return [row[keep][:max_tags].tolist() for row, keep in zip(order, ok, strict=True)]


def assign(
    index: TopicIndex,
    vecs: np.ndarray,
    texts: list[str],
    source_tags: list[list[str]] | None = None,
    max_tags: int = 3,
) -> list[list[tuple[str, float]]]:
    """0..max_tags (slug, score) per item, best first.

    ``vecs`` are the items' embeddings (same encoder as the index), ``texts`` the
    matching item texts (see item_text: title on the first line, then summary),
    ``source_tags`` the source's own tags per item, if any.
    """
    vecs = _as_unit_rows(vecs) if len(texts) else np.zeros((0, index.vectors.shape[1]), np.float32)
    if vecs.shape[0] != len(texts):
        raise ValueError(f"{vecs.shape[0]} vectors for {len(texts)} texts")
    if not texts:
        return []
    scores = score_matrix(index, vecs, texts, source_tags)
    c = index.calib
    return [
        [(index.topics[t].slug, round(float(scores[i, t]), 4)) for t in picks]
        for i, picks in enumerate(select(scores, max_tags=max_tags, min_score=c.min_score, margin=c.margin))
    ]


def score_matrix(
    index: TopicIndex, vecs: np.ndarray, texts: Sequence[str], source_tags: Sequence[Sequence[str]] | None = None
) -> np.ndarray:
    """(n_items, n_topics) final scores; an item's row max says how well it fits the taxonomy at all."""
    sim = topic_similarity(index, vecs)
    kw, tag, _ = evidence(index, texts, source_tags, with_hits=False)
    return combine(sim, kw, tag, keyword_weight=index.calib.keyword_weight, tag_weight=index.calib.tag_weight)


def explain(index: TopicIndex, vec: np.ndarray, text: str, source_tags: list[str] | None = None) -> list[dict]:
    """Why each topic was (not) chosen for one item; one dict per topic, best score first."""
    sim = topic_similarity(index, vec)
    kw, tag, hits = evidence(index, [text], [list(source_tags or [])])
    c = index.calib
    scores = combine(sim, kw, tag, keyword_weight=c.keyword_weight, tag_weight=c.tag_weight)
    chosen = set(select(scores, min_score=c.min_score, margin=c.margin)[0])
    rows = []
    for t, topic in enumerate(index.topics):
        kw_hits = [index._matchers[t].keywords[k][0] for tt, k, _ in sorted(hits[0]) if tt == t]
        tag_hits = [name for name in source_tags or () if t in index.tag_topics(name)]
        rows.append(
            {
                "slug": topic.slug,
                "similarity": round(float(sim[0, t]), 4),
                "keyword_hits": kw_hits,
                "keyword_evidence": round(float(min(kw[0, t] / KEYWORD_SATURATION, 1.0)), 4),
                "tag_hits": tag_hits,
                "score": round(float(scores[0, t]), 4),
                "chosen": t in chosen,
            }
        )
    rows.sort(key=lambda r: -r["score"])
    return rows


# --- Evaluation ------------------------------------------------------------------


def evaluate(gold: list[set[str]], predicted: list[set[str]], slugs: Iterable[str]) -> dict:
    """Per-topic precision/recall/F1/support plus micro and macro averages.

    Returns {"per_topic": {slug: {...}}, "micro": {...}, "macro": {...}, "n_items": n}.
    Precision (recall) of a topic never predicted (with no gold) is 0.0; macro averages
    over the given slugs.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold rows vs {len(predicted)} predicted rows")
    slugs = list(slugs)
    per: dict[str, dict] = {}
    tp_all = fp_all = fn_all = 0
    for slug in slugs:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if slug in g and slug in p)
        fp = sum(1 for g, p in zip(gold, predicted, strict=True) if slug not in g and slug in p)
        fn = sum(1 for g, p in zip(gold, predicted, strict=True) if slug in g and slug not in p)
        tp_all, fp_all, fn_all = tp_all + tp, fp_all + fp, fn_all + fn
        per[slug] = _prf(tp, fp, fn) | {"support": tp + fn}
    micro = _prf(tp_all, fp_all, fn_all)
    n = max(len(slugs), 1)
    macro = {k: sum(per[s][k] for s in slugs) / n for k in ("precision", "recall", "f1")}
    return {"per_topic": per, "micro": micro, "macro": macro, "n_items": len(gold)}


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn}


def load_eval(path: Path) -> list[dict]:
    """Read a JSONL file of labelled items (id, title, summary, tags, gold, split)."""
    path = Path(path)
    items = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
            for key in ("id", "title", "gold"):
                if key not in item:
                    raise ConfigError(f"{path}:{lineno}: field {key!r} missing")
            item.setdefault("summary", "")
            item.setdefault("tags", [])
            item.setdefault("split", "dev")
            items.append(item)
    return items
