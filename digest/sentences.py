"""Sentence splitting for claims and summaries: small on purpose, so a site build imports nothing else."""

from __future__ import annotations

import re

# A sentence ends at . ! or ? (plus closing quotes/brackets) followed by whitespace, or at a newline.
_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)|\n")
# Abbreviations that end in a period but do not end a sentence ("e.g.", "et al.", "vs.").
_ABBREV = re.compile(
    r"(?:\b(?:e\.g|i\.e|et al|al|vs|cf|fig|figs|eq|eqs|sec|approx|resp|incl|ca|no|dr|mr|prof|ref|refs)\.)$", re.I
)
_INITIAL = re.compile(r"(?:^|\s)[A-Z]\.$")  # "J. Smith"


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _END.finditer(text):
        if m.group() != "\n":
            head = text[start : m.end()].rstrip("\"'”’)]")
            nxt = text[m.end() :].lstrip()[:1]
            tail = head[-12:]
            if _ABBREV.search(tail) or _INITIAL.search(tail) or (nxt and nxt.islower()):
                continue
        spans.append((start, m.end()))
        start = m.end()
    spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out


def split_sentences(text: str) -> list[str]:
    """Split on sentence ends, not on "e.g.", "et al.", decimals ("6.17") or versions."""
    return [text[s:e] for s, e in _sentence_spans(text or "")]
