"""Topic tagging: sentence-embedding similarity, raised by specific keywords and by a source's own tags.

The taxonomy lives in ``data/topics.toml`` (or a user's own file). Each topic is represented by
prototype embeddings (its description, its keyword list, its example titles). For an item
(title + summary) and a topic:

    centred = similarity - baseline
    score   = centred + KEYWORD_WEIGHT * keyword_evidence * [centred >= KEYWORD_SUPPORT * bar]
                      + TAG_WEIGHT * (bar - TAG_FLOOR) * tag_evidence * [centred >= TAG_FLOOR]
    fit     = score / bar            (chosen when fit >= 1 and score is within MARGIN of the best)

``similarity`` is the item's mean cosine similarity to the topic's prototypes. The *baseline* is
the median similarity of a cohort mostly not about the topic (the corpus being tagged plus the
other topics' prototypes). The *bar* is learnt from the topic's likely members, the items more
similar to it (centred) than to any other topic: ``THRESHOLD_SHARE`` of their ``BAR_QUANTILE``
centred similarity (see ``thresholds`` for the safeguards). Both come from the taxonomy and the
unlabelled corpus, so they carry over to a user's own taxonomy.
``keyword_evidence`` (0..1) sums the topic's keywords found in the text, each weighted by its
*specificity*: a keyword found in many of the corpus's items ("benchmark", "training") weighs
little, a rare one ("grpo", "sparse autoencoder") fully; it only counts once the embedding alone
reaches part of the bar, so keyword evidence alone never adds a topic. ``tag_evidence`` is 1 when
one of the item's source tags (a blog's own categories) names the topic (0.5 when a tag only holds
one of its keywords): strong evidence that lifts the topic over its bar unless the text is clearly
about something else, and is exempt from the margin. At most ``max_tags`` topics are returned. docs/topics.md
explains the method and its figures.

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
# Fitted (grid search, all-MiniLM-L6-v2, 2026-12-05) on the dev split of tests/data/topics_eval.jsonl,
# with and without the taxonomy's example titles, in a corpus with 32 real off-taxonomy abstracts
# (tests/data/real/topics_offtopic_dev.jsonl); its test split and the second taxonomy
# (tests/data/real/topics_ml_feed*) were not used for fitting. Every threshold is relative to a
# topic's own baseline and likely members, so no constant names a topic. See docs/topics.md.
TOP_K_PROTOTYPES: int | None = None  # similarity = mean of the best k prototypes; None = all
THRESHOLD_SHARE = 0.9  # a topic's bar: this share of its likely members' (centred) similarity ...
BAR_QUANTILE = 0.75  # ... taken at this quantile of them
MIN_MEMBERS = 3  # likely members a topic needs for a bar of its own (else the others' median bar)
BAR_FLOOR_SHARE = 0.6  # no topic's bar is lower than this share of the median bar
SCORE_SHARE = 0.6  # the score bar: this share of the likely members' BAR_QUANTILE score
MIN_THRESHOLD = 0.05  # no bar is lower than this above the baseline
KEYWORD_WEIGHT = 0.35  # weight of keyword evidence (0..1) in the score
KEYWORD_SUPPORT = 0.3  # keywords count only once the embedding alone reaches this share of the topic's bar
KEYWORD_PRIOR_DF = 0.05  # a keyword's assumed document frequency before the corpus is seen ...
KEYWORD_PRIOR_WEIGHT = 20.0  # ... counted as this many pseudo-items (small corpora keep keywords specific)
TITLE_WEIGHT = 2.0  # a keyword hit in the title (first line) counts this much
TAG_WEIGHT = 1.0  # a tag naming the topic adds (bar - TAG_FLOOR) times this: enough to clear the bar
KEYWORD_TAG_STRENGTH = 0.5  # a source tag that holds only one of the topic's keywords counts this much
TAG_FLOOR = -0.1  # centred similarity a topic needs before a source tag counts
MIN_SCORE = 1.0  # fit (score / the topic's bar) a topic needs to be chosen
MARGIN = 0.25  # ... and its score must be within this of the item's best score
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Calibration:
    """The constants that turn similarities and evidence into tags; they depend on the embedding model."""

    keyword_weight: float = KEYWORD_WEIGHT
    tag_weight: float = TAG_WEIGHT
    threshold_share: float = THRESHOLD_SHARE
    min_score: float = MIN_SCORE
    margin: float = MARGIN


# Per-model calibrations. The static model2vec model had its own constants for the old absolute
# score; baselines and bars measured per topic absorb most of a model's scale, so every model
# uses these constants until one is measured otherwise.
CALIBRATIONS: dict[str, Calibration] = {}


def calibration(model: str) -> Calibration:
    """The calibration for an embedding model name (MiniLM's constants by default)."""
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
        self._tag_topics: dict[str, list[tuple[int, float]]] = {}
        self._proto_sim: np.ndarray | None = None

    def tag_topics(self, tag: str) -> list[int]:
        """Indices of the topics a source tag names (cached: feeds repeat the same few tags)."""
        return [t for t, _ in self.tag_strengths(tag)]

    def tag_strengths(self, tag: str) -> list[tuple[int, float]]:
        """(topic index, strength) for each topic a source tag names: 1.0 by its name, 0.5 by a keyword."""
        if tag not in self._tag_topics:
            found = ((t, m.strength(tag)) for t, m in enumerate(self._matchers))
            self._tag_topics[tag] = [(t, w) for t, w in found if w > 0]
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
        names = {topic.slug, topic.name, topic.name.split("(")[0]}
        self.name_patterns = [_phrase_pattern(n) for n in names if _normalise(n)]
        self.tag_patterns = self.name_patterns + [p for _, p in self.keywords]

    def names(self, tag: str) -> bool:
        """Whether a source tag names this topic (equals or contains its name or a keyword)."""
        return self.strength(tag) > 0

    def strength(self, tag: str) -> float:
        """1.0 when a source tag contains the topic's name or slug, 0.5 when only one of its keywords, else 0."""
        norm = _normalise(tag)
        if any(p.search(norm) for p in self.name_patterns):
            return 1.0
        return KEYWORD_TAG_STRENGTH if any(p.search(norm) for _, p in self.keywords) else 0.0


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


def _hit_arrays(index: TopicIndex, texts: Sequence[str]) -> tuple[np.ndarray, ...]:
    """(text, topic, keyword, weight) arrays of every keyword hit, searched in bounded chunks."""
    parts = []
    for start in range(0, len(texts), _CHUNK):
        rows, topic, keyword, weights = index._keywords.matches(index._matchers, texts[start : start + _CHUNK])
        parts.append((rows + start, topic, keyword, weights))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=np.float32)
    return tuple(np.concatenate(col) for col in zip(*parts, strict=True))


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
    rows, topic, keyword, weights = _hit_arrays(index, texts)
    kw = np.zeros((n, m), dtype=np.float32)
    np.add.at(kw, (rows, topic), weights)
    hits: list[list[tuple[int, int, float]]] = [[] for _ in range(n)]
    if with_hits:
        for i, t, k, w in zip(rows.tolist(), topic.tolist(), keyword.tolist(), weights.tolist(), strict=True):
            hits[i].append((t, k, w))
    return kw, tag_matrix(index, source_tags or [[] for _ in range(n)]), hits


def tag_matrix(index: TopicIndex, source_tags: Sequence[Sequence[str]]) -> np.ndarray:
    """(n_items, n_topics): 1 where one of the item's source tags names the topic, 0.5 where one only
    contains one of its keywords ("QLoRA" for fine-tuning), else 0."""
    tag = np.zeros((len(source_tags), len(index.topics)), dtype=np.float32)
    for i, tags in enumerate(source_tags):
        for name in tags:
            for t, strength in index.tag_strengths(name):
                tag[i, t] = max(tag[i, t], strength)
    return tag


@dataclass(frozen=True)
class Context:
    """What the corpus being tagged says about each topic: its baseline, its bar and how specific its keywords are."""

    baseline: np.ndarray  # (n_topics,) median similarity of the cohort (corpus + other topics' prototypes)
    threshold: np.ndarray  # (n_topics,) centred similarity bar: keywords count above KEYWORD_SUPPORT of it
    bar: np.ndarray  # (n_topics,) score the topic needs (fit = score / bar)
    # (n_topics, max keywords, 2): each keyword's specificity over whole texts [..., 0] and over titles
    # [..., 1]; a keyword the corpus never holds counts fully (1.0)
    specificity: np.ndarray
    n_items: int = 0


def _prototype_similarity(index: TopicIndex) -> np.ndarray:
    """(n_prototypes, n_topics): each prototype text's similarity to every topic (cached on the index)."""
    if index._proto_sim is None:
        index._proto_sim = topic_similarity(index, index.vectors)
    return index._proto_sim


def baselines(index: TopicIndex, sim: np.ndarray) -> np.ndarray:
    """Per topic, the median similarity of a cohort mostly *not* about it: the corpus rows of ``sim``
    plus the prototype texts of every other topic (so a batch of one item still has a baseline).

    It is never below the median over the other topics' prototypes alone, so a corpus that is mostly
    outside the taxonomy does not lower the bar for its least unrelated items.
    """
    proto = _prototype_similarity(index)
    out = np.empty(len(index.topics), dtype=np.float32)
    for t in range(len(index.topics)):
        others = proto[index.owner != t, t]
        out[t] = max(np.median(np.concatenate([sim[:, t], others])), np.median(others) if len(others) else -1.0)
    return out


def coherence(index: TopicIndex) -> np.ndarray:
    """Per topic, the mean cosine similarity between its own prototypes (description, keywords, examples):
    how close texts that *are* about the topic sit to each other. A topic with one prototype gets the
    median of the others."""
    out = np.full(len(index.topics), np.nan, dtype=np.float32)
    for t in range(len(index.topics)):
        own = index.vectors[index.owner == t]
        if len(own) >= 2:
            pair = own @ own.T
            out[t] = (pair.sum() - np.trace(pair)) / (len(own) * (len(own) - 1))
    fallback = np.nanmedian(out) if np.isfinite(out).any() else 0.5
    return np.where(np.isfinite(out), out, fallback).astype(np.float32)


def _member_bars(centred: np.ndarray, values: np.ndarray, share: float) -> np.ndarray | None:
    """Per topic, ``share`` of the ``BAR_QUANTILE`` of ``values`` over its likely members (the items whose
    centred similarity is highest for it), or None when no topic has ``MIN_MEMBERS`` of them.

    A topic with too few members takes the others' median bar, and no bar goes under ``BAR_FLOOR_SHARE``
    of the median bar: a topic nothing in the corpus is about still has "likely members", the least
    unrelated items, and must not learn a low bar from them.
    """
    if not len(centred):
        return None
    best = centred.argmax(axis=1)
    level = np.full(centred.shape[1], np.nan, dtype=np.float32)
    for t in range(centred.shape[1]):
        members = values[best == t, t]
        if len(members) >= MIN_MEMBERS:
            level[t] = np.quantile(members, BAR_QUANTILE)
    if not np.isfinite(level).any():
        return None
    bars = share * np.where(np.isfinite(level), level, np.nanmedian(level))
    return np.maximum(np.maximum(bars, BAR_FLOOR_SHARE * np.median(bars)), MIN_THRESHOLD).astype(np.float32)


def thresholds(index: TopicIndex, baseline: np.ndarray, sim: np.ndarray | None = None) -> np.ndarray:
    """Each topic's similarity bar (centred), learnt from the unlabelled corpus (self-training).

    ``threshold_share`` of its likely members' ``BAR_QUANTILE`` centred similarity (``_member_bars``).
    When no topic has enough members (a handful of items), the bar comes from the taxonomy alone: the
    share of the way from the baseline to how similar the topic's own prototypes are to each other
    (``coherence``). Keywords count only above ``KEYWORD_SUPPORT`` of this bar.
    """
    share = index.calib.threshold_share
    learnt = _member_bars(sim - baseline, sim - baseline, share) if sim is not None else None
    if learnt is not None:
        return learnt
    return np.maximum(share * (coherence(index) - baseline), MIN_THRESHOLD).astype(np.float32)


def specificity(df: int, n_items: int) -> float:
    """How much one keyword hit counts (0..1), from the share of the corpus's items that contain it.

    The share is smoothed towards ``KEYWORD_PRIOR_DF`` so that a small corpus says little; a keyword
    as common as the prior (5% of items) or rarer counts fully, one in 15% of items about 0.4, one in 30% under 0.2.
    """
    share = (df + KEYWORD_PRIOR_WEIGHT * KEYWORD_PRIOR_DF) / (n_items + KEYWORD_PRIOR_WEIGHT)
    rarity = np.log(1.0 / share) / np.log(1.0 / KEYWORD_PRIOR_DF)
    return float(np.clip(rarity, 0.0, 1.0) ** 2)


def corpus_context(
    index: TopicIndex, sim: np.ndarray, texts: Sequence[str], hits: tuple[np.ndarray, ...] | None = None
) -> Context:
    """The Context of a corpus: ``sim`` are its topic similarities, ``texts`` its item texts
    (``hits``: their keyword hits from ``_hit_arrays``, when the caller has them already)."""
    rows, topic, keyword, weights = hits if hits is not None else _hit_arrays(index, texts)
    n_kw = max((len(m.keywords) for m in index._matchers), default=0) or 1
    spec = np.ones((len(index.topics), n_kw, 2), dtype=np.float32)
    for field, keep in enumerate((np.ones(len(rows), bool), weights > 1)):  # anywhere, in the title
        pair = topic[keep] * n_kw + keyword[keep]
        items_with = np.unique(rows[keep] * spec[..., 0].size + pair)  # one per (item, keyword)
        df = np.bincount(items_with % spec[..., 0].size, minlength=spec[..., 0].size)
        seen = np.flatnonzero(df)
        spec[..., field].flat[seen] = [specificity(int(c), len(texts)) for c in df[seen]]
    baseline = baselines(index, sim)
    threshold = thresholds(index, baseline, sim)
    # The score bar is learnt the same way from the members' scores (similarity plus keyword
    # evidence), so that a taxonomy whose keywords add little (or that has none) is not held to a
    # bar set by keyword-rich ones.
    centred = sim - baseline
    kw = _keyword_evidence_from(index, len(texts), spec, (rows, topic, keyword, weights))
    scores = combine(centred, kw, np.zeros_like(centred), threshold, keyword_weight=index.calib.keyword_weight)
    bar = _member_bars(centred, scores, SCORE_SHARE)
    return Context(
        baseline=baseline,
        threshold=threshold,
        bar=threshold if bar is None else bar,
        specificity=spec,
        n_items=len(texts),
    )


def _keyword_evidence(
    index: TopicIndex, texts: Sequence[str], context: Context, hits: tuple[np.ndarray, ...] | None = None
) -> np.ndarray:
    """(n_items, n_topics): specificity-weighted keyword hits (title hits count TITLE_WEIGHT), capped at 1."""
    hits = hits if hits is not None else _hit_arrays(index, texts)
    return _keyword_evidence_from(index, len(texts), context.specificity, hits)


def _keyword_evidence_from(
    index: TopicIndex, n_texts: int, spec: np.ndarray, hits: tuple[np.ndarray, ...]
) -> np.ndarray:
    rows, topic, keyword, weights = hits
    weight = spec[topic, keyword, (weights > 1).astype(np.int64)]
    kw = np.zeros((n_texts, len(index.topics)), dtype=np.float32)
    np.add.at(kw, (rows, topic), weights * weight)
    return np.minimum(kw, 1.0)


def combine(
    centred: np.ndarray,
    keyword_evidence: np.ndarray,
    tag: np.ndarray,
    threshold: np.ndarray,
    keyword_weight: float = KEYWORD_WEIGHT,
    tag_weight: float = TAG_WEIGHT,
    bar: np.ndarray | None = None,
) -> np.ndarray:
    """Raw scores: centred similarity, plus keyword evidence where the embedding alone already reaches
    ``KEYWORD_SUPPORT`` of the topic's bar, plus tag evidence where the text is not clearly about
    something else (centred similarity at least ``TAG_FLOOR``): a tag naming the topic lifts it over its
    bar from anywhere above that floor (``tag_weight`` 1), a tag holding one of its keywords half as far."""
    keywords = keyword_weight * keyword_evidence * (centred >= KEYWORD_SUPPORT * threshold)
    tags = tag_weight * ((threshold if bar is None else bar) - TAG_FLOOR) * tag * (centred >= TAG_FLOOR)
    return centred + keywords + tags


def select(
    raw: np.ndarray,
    fit: np.ndarray,
    max_tags: int = 3,
    min_score: float = MIN_SCORE,
    margin: float = MARGIN,
    named: np.ndarray | None = None,
) -> list[list[int]]:
    """Per row, topic indices chosen (best fit first): fit >= min_score and raw >= best raw - margin.

    Topics ``named`` by one of the item's source tags are exempt from the margin: the author said so.
    """
    if not raw.shape[1]:
        return [[] for _ in raw]
    order = np.argsort(-fit, axis=1, kind="stable")
    close = raw >= raw.max(axis=1, keepdims=True) - margin
    ok = (fit >= min_score) & (close if named is None else close | named)
    ok = np.take_along_axis(ok, order, axis=1)
    return [row[keep][:max_tags].tolist() for row, keep in zip(order, ok, strict=True)]


def _scores(
    index: TopicIndex,
    vecs: np.ndarray,
    texts: Sequence[str],
    source_tags: Sequence[Sequence[str]] | None,
    context: Context | None,
) -> tuple[np.ndarray, np.ndarray, Context, np.ndarray, np.ndarray]:
    """(raw score, fit = raw / bar, context, similarity, named by a source tag); all but the context are
    (n_items, n_topics)."""
    if source_tags is not None and len(source_tags) != len(texts):
        raise ValueError(f"source_tags has {len(source_tags)} entries for {len(texts)} texts")
    sim = topic_similarity(index, vecs)
    hits = _hit_arrays(index, texts)
    context = context or corpus_context(index, sim, texts, hits)
    kw = _keyword_evidence(index, texts, context, hits)
    tag = tag_matrix(index, source_tags or [[] for _ in texts])
    c = index.calib
    centred = sim - context.baseline
    raw = combine(
        centred, kw, tag, context.threshold, keyword_weight=c.keyword_weight, tag_weight=c.tag_weight, bar=context.bar
    )
    named = (tag >= 1.0) & (centred >= TAG_FLOOR)
    return raw, raw / context.bar, context, sim, named


def assign(
    index: TopicIndex,
    vecs: np.ndarray,
    texts: list[str],
    source_tags: list[list[str]] | None = None,
    max_tags: int = 3,
    context: Context | None = None,
) -> list[list[tuple[str, float]]]:
    """0..max_tags (slug, fit) per item, best first; fit = score / the topic's bar, so 1.0 is just enough.

    ``vecs`` are the items' embeddings (same encoder as the index), ``texts`` the
    matching item texts (see item_text: title on the first line, then summary),
    ``source_tags`` the source's own tags per item, if any. Baselines and keyword
    specificity come from ``context``, by default from these items themselves: pass the
    whole corpus at once (as ``digest tag`` does), not one item at a time.
    """
    vecs = _as_unit_rows(vecs) if len(texts) else np.zeros((0, index.vectors.shape[1]), np.float32)
    if vecs.shape[0] != len(texts):
        raise ValueError(f"{vecs.shape[0]} vectors for {len(texts)} texts")
    if not texts:
        return []
    raw, fit, _, _, named = _scores(index, vecs, texts, source_tags, context)
    c = index.calib
    return [
        [(index.topics[t].slug, round(float(fit[i, t]), 4)) for t in picks]
        for i, picks in enumerate(
            select(raw, fit, max_tags=max_tags, min_score=c.min_score, margin=c.margin, named=named)
        )
    ]


def score_matrix(
    index: TopicIndex,
    vecs: np.ndarray,
    texts: Sequence[str],
    source_tags: Sequence[Sequence[str]] | None = None,
    context: Context | None = None,
) -> np.ndarray:
    """(n_items, n_topics) fit (score / bar); an item's row max says how well it fits the taxonomy at all."""
    return _scores(index, vecs, texts, source_tags, context)[1]


def explain(
    index: TopicIndex,
    vec: np.ndarray,
    text: str,
    source_tags: list[str] | None = None,
    context: Context | None = None,
) -> list[dict]:
    """Why each topic was (not) chosen for one item; one dict per topic, best fit first.

    Pass the corpus's ``context`` to get the same scores as ``digest tag`` gave.
    """
    raw, fit, context, sim, named = _scores(index, _as_unit_rows(vec), [text], [list(source_tags or [])], context)
    _, _, hits = evidence(index, [text])
    kw = _keyword_evidence(index, [text], context)
    c = index.calib
    chosen = set(select(raw, fit, min_score=c.min_score, margin=c.margin, named=named)[0])
    rows = []
    for t, topic in enumerate(index.topics):
        mine = [(k, w > 1) for tt, k, w in sorted(hits[0]) if tt == t]
        rows.append(
            {
                "slug": topic.slug,
                "similarity": round(float(sim[0, t]), 4),
                "baseline": round(float(context.baseline[t]), 4),
                "threshold": round(float(context.threshold[t]), 4),  # similarity bar (keywords count above 30%)
                "bar": round(float(context.bar[t]), 4),  # score bar: the fit ("score") is raw / bar
                "keyword_hits": [index._matchers[t].keywords[k][0] for k, _ in mine],
                "keyword_specificity": [round(float(context.specificity[t, k, int(title)]), 2) for k, title in mine],
                "keyword_evidence": round(float(kw[0, t]), 4),
                "tag_hits": [name for name in source_tags or () if t in index.tag_topics(name)],
                "raw": round(float(raw[0, t]), 4),
                "score": round(float(fit[0, t]), 4),
                "chosen": t in chosen,
            }
        )
    rows.sort(key=lambda r: -r["score"])
    return rows


STRONG_FIT = 1.5  # confidence_label: "strong" from this fit (score / the topic's bar) up
LIKELY_FIT = 1.25  # ... "likely" from this fit up, "possible" below


def confidence_label(score: float, calib: Calibration | None = None) -> str:
    """A reader's word for a chosen topic's stored score (its fit: 1.0 = just over the topic's bar).

    "strong" from 1.5x the bar (the top half of chosen tags on the dev set), "likely" from 1.25x,
    "possible" below (the bottom tenth). On the second taxonomy, never fitted, 87%, 51% and 29% of
    the tags in these bands are right. The bands scale with ``min_score`` when a calibration moves it.
    """
    floor = (calib or Calibration()).min_score
    if score >= floor * STRONG_FIT:
        return "strong"
    if score >= floor * LIKELY_FIT:
        return "likely"
    return "possible"


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
