"""Pure, extractive: the one-line summary and key points of a finding come from its own sentences."""

from __future__ import annotations

import re

METHOD_CUES = re.compile(
    r"\b(we (propose|introduce|present|show|find|release)|this (paper|work|post)|our (method|approach)|"
    r"achiev|outperform|reduc|improv|speed|faster|enabl|uses?|train)",
    re.IGNORECASE,
)


def sentences(text: str) -> list[str]:
    from digest.sentences import split_sentences

    return [s.strip() for s in split_sentences(text) if s.strip()]


ONE_LINE_HEAD = 960  # one_line splits only this much of the text


def one_line(summary: str, limit: int = 240, parts: list[str] | None = None) -> str:
    """The first sentence, cut at a word boundary if it runs long (only the head of the text is split).

    `parts`: the sentences of the whole summary, when it is no longer than ONE_LINE_HEAD (the same split)."""
    parts = sentences((summary or "")[:ONE_LINE_HEAD]) if parts is None else parts
    if not parts:
        return ""
    first = parts[0]
    if len(first) <= limit:
        return first
    return first[:limit].rsplit(" ", 1)[0] + "…"


def key_points(summary: str, claim_sentences: list[str], limit: int = 4, parts: list[str] | None = None) -> list[str]:
    """Up to `limit` sentences after the first: claim-bearing ones first, then method ones, in text order."""
    parts = (sentences(summary) if parts is None else parts)[1:]
    claimed = {s.strip() for s in claim_sentences}
    ranked = sorted(
        range(len(parts)),
        key=lambda i: (parts[i] not in claimed, not METHOD_CUES.search(parts[i]), i),
    )
    chosen = sorted(ranked[:limit])
    return [parts[i] for i in chosen if len(parts[i]) > 20]
