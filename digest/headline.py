"""Headline: which of a finding's claims is its main result, and the phrase a reader sees for it.

One choice serves the site, the newsletter, `export` and `search --json` (issue #14). Pure: claims in, a
Headline out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Headline:
    value: float
    value_hi: float | None
    unit: str
    kind: str
    direction: str
    baseline: float | None
    text: str  # the phrase a reader sees: "2.6× lower latency (vs batch-1 estimate)"
    claim: Any = None  # the claim (ledger row or claims.Claim) it was made from

    def as_json(self) -> dict:
        """The fields `export` and `search --json` carry."""
        out = asdict(self)
        out.pop("claim")
        return out


def choose_headline(claims: Sequence[Any], text: str = "") -> Headline | None:
    """The claim that states the main result, as a Headline; None when no claim is good enough (`other` never
    headlines). `claims`: ledger rows or claims.Claim objects in reading order; `text`: the finding's summary."""
    from digest.render import format_claim

    for c in claims:
        if c.kind == "other":
            continue
        phrase = f"{format_claim(c)} {c.kind}".strip()
        return Headline(c.value, c.value_hi, c.unit, c.kind, c.direction, c.baseline, phrase, c)
    return None
