"""Top picks: the week's strongest findings for the newsletter, by a small explainable score. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

PICKS_MAX = 5
VERDICT_POINTS = {"reproduced": 3.0, "diverged": -2.0, "failed": -1.0}


@dataclass(frozen=True)
class Candidate:
    """What the ranking reads of a finding: its headline (or None), shown verdict, blog posts and code."""

    key: object  # handed back as is (a render.Finding, an id...)
    headline: object | None  # digest.headline.Headline: kind, direction, baseline
    verdict: str | None = None  # the headline claim's shown verdict
    coverage: int = 0  # blog posts covering it
    has_code: bool = False
    order: int = 0  # ties: the lower first (e.g. newest first)


def pick_score(c: Candidate) -> float:
    """Headline strength (a result headline 2, +1 with a baseline, +1 with a direction), + 3 reproduced / -2
    diverged / -1 failed, + 1 per covering blog post (at most 2), + 1 with code. No headline: 0."""
    h = c.headline
    if h is None:
        return 0.0
    score = 2.0 + (getattr(h, "baseline", None) is not None) + bool(getattr(h, "direction", ""))
    score += VERDICT_POINTS.get(c.verdict or "", 0.0)
    score += min(c.coverage, 2) + (1.0 if c.has_code else 0.0)
    return score


def top_picks(candidates: Sequence[Candidate], limit: int = PICKS_MAX) -> list:
    """The keys of the best `limit` candidates with a headline and a positive score, best first (ties: order)."""
    scored = [(pick_score(c), c) for c in candidates if c.headline is not None]
    ranked = sorted((sc for sc in scored if sc[0] > 0), key=lambda sc: (-sc[0], sc[1].order))
    return [c.key for _, c in ranked[:limit]]
