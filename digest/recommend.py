"""Recommendations and similar papers from stored embeddings (issue #16). Pure numpy: vectors in, ranks out.

In the spirit of arxiv-sanity-lite: a linear model per reader, trained on the library (positives) against the
rest of the stored findings (negatives), scores every candidate; each pick is explained by the library papers
nearest to it. A library too small to train on (fewer than MIN_LINEAR vectors) falls back to the cosine to its
centroid. The linear model is a class-balanced ridge classifier solved in closed form (one d x d solve), which
trains in milliseconds on 100,000 findings where an SVM would not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_LINEAR = 5  # library vectors needed to train the linear model; below it, nearest centroid
NEGATIVES = 2000  # findings sampled as negatives (all of them when fewer)
RIDGE = 1.0  # L2 penalty of the ridge classifier
BECAUSE = 3  # library papers named in each explanation
BECAUSE_MIN = 0.25  # cosine a library paper needs to be named (the nearest one is always named)


@dataclass(frozen=True)
class Pick:
    item_id: int
    score: float
    because: list[int]  # rows of the library matrix, nearest first


def unit_rows(mat: np.ndarray) -> np.ndarray:
    mat = np.asarray(mat, dtype=np.float32)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return mat / np.where(norms == 0, 1, norms)


def train(library: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, float]:
    """(weights, bias) of a class-balanced ridge classifier: library = +1, negatives = -1."""
    p, n = len(library), len(negatives)
    x1 = np.ones((p + n, library.shape[1] + 1), dtype=np.float32)  # the last column is the bias
    x1[:p, :-1], x1[p:, :-1] = library, negatives
    y = np.concatenate([np.ones(p), -np.ones(n)]).astype(np.float32)
    w = np.concatenate([np.full(p, 0.5 / p), np.full(n, 0.5 / max(n, 1))]).astype(np.float32)  # classes weigh half
    xw = x1 * w[:, None]
    gram = (x1.T @ xw).astype(np.float64)
    d = library.shape[1]
    gram[np.arange(d), np.arange(d)] += RIDGE / (p + n)  # no penalty on the bias
    sol = np.linalg.solve(gram, (xw.T @ y).astype(np.float64))
    return sol[:-1].astype(np.float32), float(sol[-1])


def score(
    mat: np.ndarray, library: np.ndarray, candidates: np.ndarray, library_rows: np.ndarray, seed: int = 0
) -> np.ndarray:
    """A score for each candidate row of `mat` (unit rows): the ridge decision value, or the cosine to the
    library centroid when the library is small. `library_rows`: rows of mat that are library papers (never
    sampled as negatives)."""
    if len(library) < MIN_LINEAR:
        centroid = library.mean(axis=0)
        centroid /= np.linalg.norm(centroid) or 1.0
        return (mat @ centroid)[candidates]  # one pass over mat, no copy of the candidate rows
    rng = np.random.default_rng(seed)
    pool = rng.choice(len(mat), min(len(mat), NEGATIVES + len(library_rows)), replace=False)
    pool = pool[~np.isin(pool, library_rows)][:NEGATIVES]
    weights, bias = train(library, mat[np.sort(pool)])
    return (mat @ weights)[candidates] + bias


def recommend(
    mat: np.ndarray,
    library: np.ndarray,
    candidates: np.ndarray,
    library_rows: np.ndarray,
    limit: int,
    ids: np.ndarray,
) -> list[Pick]:
    """The `limit` best candidates (rows of mat; `ids` maps rows to item ids), each with its explanation."""
    if len(candidates) == 0 or len(library) == 0:
        return []
    from digest.blas import one_thread

    library = unit_rows(library)
    with one_thread():
        scores = score(mat, library, candidates, library_rows, seed=len(library))
    k = min(limit, len(candidates))
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    picks = []
    for t in top:
        sims = library @ mat[candidates[t]]
        order = np.argsort(-sims, kind="stable")[:BECAUSE]
        because = [int(j) for n, j in enumerate(order) if n == 0 or sims[j] >= BECAUSE_MIN]
        picks.append(Pick(int(ids[candidates[t]]), float(scores[t]), because))
    return picks


def similar(mat: np.ndarray, row: int, limit: int = 5) -> list[tuple[int, float]]:
    """The `limit` rows nearest to `row` by cosine (itself excluded), nearest first."""
    if len(mat) <= 1:
        return []
    from digest.blas import one_thread

    with one_thread():
        sims = mat @ mat[row]
    sims[row] = -np.inf
    k = min(limit, len(mat) - 1)
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.argsort(-sims[top], kind="stable")]
    return [(int(t), float(sims[t])) for t in top]


def evaluate(vectors: np.ndarray, gold: list[set[str]], library_size: int = 3, k: int = 10) -> dict:
    """Precision@k per topic: the first `library_size` items of a topic are the library, the rest of the corpus
    are candidates; a pick counts when its gold labels include the topic."""
    mat = unit_rows(vectors)
    ids = np.arange(len(mat))
    per_topic = {}
    for slug in sorted({s for g in gold for s in g}):
        members = [n for n, g in enumerate(gold) if slug in g]
        if len(members) <= library_size:
            continue
        library_rows = np.array(members[:library_size], dtype=np.int64)
        candidates = np.setdiff1d(ids, library_rows)
        picks = recommend(mat, mat[library_rows], candidates, library_rows, k, ids)
        hits = sum(slug in gold[p.item_id] for p in picks)
        per_topic[slug] = {"precision_at_10": hits / k, "library": library_size, "members": len(members)}
    mean = float(np.mean([r["precision_at_10"] for r in per_topic.values()])) if per_topic else 0.0
    return {"per_topic": per_topic, "mean_precision_at_10": mean}
