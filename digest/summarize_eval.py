"""`digest eval summaries`: how often the one-liner is a result sentence, on a labelled JSONL file.

Each line: {"id", "split", "title", "summary", "sentences": [...], "result": [i...], "does": [i...],
"vague": [i...]} with sentence indices into `sentences` (the split of `summary` when it was labelled). A
one-liner is a hit when its sentence is a result sentence, or, for an abstract with no result sentence, a
"what the paper does" sentence (or a vague "demonstrates the effectiveness" one).
"""

from __future__ import annotations

import json
from pathlib import Path

SPLITS = ("dev", "test", "all")


def load_eval(path: Path) -> list[dict]:
    """The labelled rows of a summaries eval file; ValueError naming the line when one is malformed."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {n}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"line {n}: not a JSON object")
        missing = [k for k in ("id", "sentences", "result", "does") if k not in row]
        if missing:
            raise ValueError(f"line {n}: missing {', '.join(missing)}")
        parts = row["sentences"]
        if not isinstance(parts, list) or not all(isinstance(s, str) for s in parts):
            raise ValueError(f"line {n}: sentences must be a list of strings")
        for key in ("result", "does", "vague"):
            idx = row.get(key, [])
            if not isinstance(idx, list) or not all(isinstance(i, int) and 0 <= i < len(parts) for i in idx):
                raise ValueError(f"line {n}: {key} must list sentence indices below {len(parts)}")
        rows.append(row)
    return rows


def acceptable(row: dict) -> set[int]:
    """The sentence indices a good one-liner may come from."""
    if row["result"]:
        return set(row["result"])
    return set(row["does"]) | set(row.get("vague", []))


def evaluate(rows: list[dict], split: str = "all") -> dict:
    """Share of one-liners made from an acceptable sentence, with the first-sentence baseline and the misses."""
    from digest.summarize import choose_sentence, trim

    rows = [r for r in rows if split == "all" or r.get("split") == split]
    hits = first_hits = with_result = with_result_hits = 0
    misses = []
    for r in rows:
        parts = r["sentences"]
        index, role = choose_sentence(parts, title=r.get("title", ""))
        ok = acceptable(r)
        hit = index in ok
        hits += hit
        first_hits += 0 in ok
        if r["result"]:
            with_result += 1
            with_result_hits += hit
        if not hit:
            misses.append(
                {
                    "id": r["id"],
                    "chosen": index,
                    "role": role,
                    "one_line": trim(parts[index], r.get("title", "")) if index >= 0 else "",
                    "expected": sorted(ok),
                }
            )
    n = len(rows)
    return {
        "split": split,
        "n": n,
        "hits": hits,
        "share": hits / n if n else 0.0,
        "first_sentence_share": first_hits / n if n else 0.0,
        "with_result": with_result,
        "with_result_share": with_result_hits / with_result if with_result else 0.0,
        "fallback": n - with_result,
        "fallback_share": (hits - with_result_hits) / (n - with_result) if n - with_result else 0.0,
        "misses": misses,
    }
