"""Emerging topics: cluster the items no topic fits, label each cluster by its distinctive terms (c-TF-IDF).

Pure numpy + scikit-learn (imported inside the functions). Small sets use average-linkage
agglomerative clustering on cosine distance; large sets (more than ``EXACT_LIMIT`` vectors,
where the O(n²) distance matrix would not fit) are over-clustered with MiniBatchKMeans and the
centroids are merged with the same agglomerative rule. Both are deterministic (fixed seed, input
put in a canonical order first), and a cluster's id is a hash of its sorted member keys, so ids
stay the same across reruns on unchanged data.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

DISTANCE = 0.5  # average-linkage cosine distance under which clusters merge (chosen on the eval set, see README)
MIN_SIZE = 3  # smaller clusters are noise, not a topic
EXACT_LIMIT = 4000  # above this many vectors, over-cluster with MiniBatchKMeans first
N_TERMS = 8
_STOP = {
    "paper",
    "propose",
    "proposed",
    "method",
    "methods",
    "approach",
    "results",
    "show",
    "shows",
    "using",
    "use",
    "model",
    "models",
    "new",
    "based",
    "work",
    "present",
    "study",
    "existing",
    "tasks",
    "task",
    "performance",
    "achieves",
    "improves",
    "large",
    "language",
}


@dataclass
class Suggestion:
    id: str
    terms: list[str]
    members: list[str]  # item keys, sorted
    titles: list[str] = field(default_factory=list)  # most central first

    @property
    def label(self) -> str:
        return ", ".join(self.terms[:4])


def _unit(vecs: np.ndarray) -> np.ndarray:
    arr = np.asarray(vecs, dtype=np.float32)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return arr / np.maximum(norms, 1e-12)


def _agglomerate(vecs: np.ndarray, distance: float) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    if len(vecs) < 2:
        return np.zeros(len(vecs), dtype=np.int64)
    model = AgglomerativeClustering(n_clusters=None, distance_threshold=distance, metric="cosine", linkage="average")
    return model.fit_predict(vecs).astype(np.int64)


def cluster_vectors(
    vecs: np.ndarray, distance: float = DISTANCE, min_size: int = MIN_SIZE, exact_limit: int = EXACT_LIMIT
) -> np.ndarray:
    """A label per row (-1: noise); clusters numbered by their first row, so equal input gives equal output."""
    vecs = _unit(vecs)
    n = len(vecs)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if n <= exact_limit:
        raw = _agglomerate(vecs, distance)
    else:
        from sklearn.cluster import MiniBatchKMeans

        k = int(min(max(n // 200, 50), 256))
        km = MiniBatchKMeans(n_clusters=k, random_state=0, batch_size=4096, n_init=1, max_iter=10, max_no_improvement=3)
        fine = km.fit_predict(vecs)
        used = np.unique(fine)
        merged = _agglomerate(_unit(km.cluster_centers_[used]), distance)
        lookup = np.full(k, -1, dtype=np.int64)
        lookup[used] = merged
        raw = lookup[fine]
    return _renumber(raw, min_size)


def _renumber(raw: np.ndarray, min_size: int) -> np.ndarray:
    """Drop clusters under min_size; number the rest 0.. in order of their first row."""
    _, first, counts = np.unique(raw, return_index=True, return_counts=True)
    keep = [(f, label) for label, f, c in zip(np.unique(raw), first, counts, strict=True) if c >= min_size]
    out = np.full(len(raw), -1, dtype=np.int64)
    for new, (_, label) in enumerate(sorted(keep)):
        out[raw == label] = new
    return out


def cluster_id(member_keys: Sequence[str]) -> str:
    """Stable id: a hash of the sorted member keys."""
    return "c" + hashlib.sha1("\n".join(sorted(member_keys)).encode()).hexdigest()[:8]


def ctfidf_terms(
    clusters: Sequence[Sequence[str]], background: Sequence[str], n_terms: int = N_TERMS
) -> list[list[str]]:
    """Each cluster's most distinctive words and bigrams against the background documents (class-based TF-IDF).

    Class c's weight of term t is tf(t, c) / |c| * log(1 + A / f(t)), A the average word count per
    class and f(t) the term's count over all classes (BERTopic's c-TF-IDF); the background is one
    more class, so terms common everywhere score low. A term must occur in at least two of a
    cluster's documents (when it has two).
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    if not clusters:
        return []
    stop = sorted(ENGLISH_STOP_WORDS | _STOP)
    vectorizer = CountVectorizer(
        stop_words=stop, ngram_range=(1, 2), token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9\-]+\b", lowercase=True
    )
    docs = [d for c in clusters for d in c] + list(background)
    vectorizer.fit(docs)
    vocab = np.asarray(vectorizer.get_feature_names_out())
    per_class = [vectorizer.transform(list(c)) for c in clusters]
    bg = vectorizer.transform(list(background)) if background else None
    counts = np.vstack(
        [np.asarray(m.sum(axis=0)).ravel() for m in per_class]
        + ([np.asarray(bg.sum(axis=0)).ravel()] if bg is not None else [])
    ).astype(np.float64)
    words = counts.sum(axis=1, keepdims=True)
    tf = counts / np.maximum(words, 1.0)
    idf = np.log1p(words.mean() / np.maximum(counts.sum(axis=0), 1.0))
    weights = tf * idf
    out: list[list[str]] = []
    for c, matrix in enumerate(per_class):
        doc_freq = np.asarray((matrix > 0).sum(axis=0)).ravel()
        need = 2 if matrix.shape[0] >= 2 else 1
        order = np.lexsort((vocab, -weights[c]))  # ties broken alphabetically: deterministic
        terms: list[str] = []
        for t in order:
            if weights[c, t] <= 0 or doc_freq[t] < need:
                continue
            term = str(vocab[t])
            if any(term in kept or kept in term for kept in terms):
                continue
            terms.append(term)
            if len(terms) == n_terms:
                break
        out.append(terms)
    return out


def suggest(
    vecs: np.ndarray,
    keys: Sequence[str],
    texts: Sequence[str],
    background: Sequence[str] = (),
    distance: float = DISTANCE,
    min_size: int = MIN_SIZE,
) -> list[Suggestion]:
    """Cluster the given (poorly fitting) items and label each cluster; largest first, then by id."""
    if not (len(vecs) == len(keys) == len(texts)):
        raise ValueError(f"{len(vecs)} vectors, {len(keys)} keys, {len(texts)} texts")
    if len(keys) == 0:
        return []
    order = np.argsort(np.asarray(keys, dtype=object), kind="stable")  # canonical order: input order never matters
    vecs = _unit(np.asarray(vecs)[order])
    keys = [keys[i] for i in order]
    texts = [texts[i] for i in order]
    labels = cluster_vectors(vecs, distance=distance, min_size=min_size)
    groups = [np.flatnonzero(labels == c) for c in range(labels.max() + 1)] if len(labels) else []
    terms = ctfidf_terms([[texts[i] for i in g] for g in groups], background)
    out = []
    for g, words in zip(groups, terms, strict=True):
        centroid = _unit(vecs[g].mean(axis=0, keepdims=True))[0]
        central = g[np.argsort(-(vecs[g] @ centroid), kind="stable")]
        members = sorted(keys[i] for i in g)
        titles = [texts[i].partition("\n")[0] for i in central[:5]]
        out.append(Suggestion(id=cluster_id(members), terms=words, members=members, titles=titles))
    out.sort(key=lambda s: (-len(s.members), s.id))
    return out


# --- turning a suggestion into a taxonomy entry ---------------------------------------------

_SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def _toml_str(value: str) -> str:
    return json.dumps(value, ensure_ascii=True)  # a JSON string with ASCII escapes is a valid TOML basic string


def topic_toml(slug: str, name: str, description: str, keywords: Sequence[str], examples: Sequence[str]) -> str:
    """One [[topic]] table as TOML text, ready to append to a taxonomy file."""
    lines = [
        "[[topic]]",
        f"slug = {_toml_str(slug)}",
        f"name = {_toml_str(name)}",
        f"description = {_toml_str(description)}",
        "keywords = [" + ", ".join(_toml_str(k) for k in keywords) + "]",
    ]
    if examples:
        lines.append("examples = [" + ", ".join(_toml_str(e) for e in examples) + "]")
    return "\n".join(lines) + "\n"


def append_topic(existing: str, block: str, cluster: str) -> str:
    """The taxonomy text with the new entry appended, the existing text kept byte for byte."""
    sep = "" if not existing or existing.endswith("\n\n") else ("\n" if existing.endswith("\n") else "\n\n")
    return f"{existing}{sep}# Accepted from suggested topic {cluster}\n{block}"
