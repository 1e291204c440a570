"""The reproduction verdict a finding shows, with its evidence: one read model for the site, the newsletter,
`export` and `search --json` (issue #17). Light on purpose (no Jinja, no SQLAlchemy): the search fast path
imports it."""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from digest.normalize import clean_text, slugify

VERDICT_LABELS = {"reproduced": "reproduced", "diverged": "diverged", "failed": "failed", "skipped": "not checked"}


def verdict_label(verdict: str) -> str:
    return VERDICT_LABELS.get(verdict, clean_text(verdict, 40))


def _num(x: float) -> str:
    """30.3, 6.17, 1,420 (never 1.42e+03)."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _with_unit(value: str, unit: str) -> str:
    return f"{value}{unit}" if unit in ("x", "%", "") else f"{value} {unit}"


def tolerance_text(tolerance: float | None, kind: str | None, unit: str) -> str:
    """'±5%' (relative), '±0.5 pts' (absolute), 'at least claimed −5%' (a floor); '' when unknown."""
    if tolerance is None:
        return ""
    if kind == "absolute":
        return "±" + _with_unit(_num(tolerance), unit)
    share = f"{tolerance * 100:.3g}%"
    return f"at least claimed −{share}" if kind == "at-least" else f"±{share}"


@dataclass(frozen=True)
class Verdict:
    """A claim's shown reproduction verdict with its evidence, as every page, feed and email says it."""

    verdict: str
    measured: float | None = None
    claimed: float | None = None
    unit: str = ""
    tolerance: str = ""  # '±5%'
    date: str = ""  # YYYY-MM-DD of the run
    hook: str = ""
    script: str = ""
    script_url: str = ""  # a link to the script when [site] repo_url is set
    skipped: str = ""  # YYYY-MM-DD of a later run skipped for want of hardware

    @property
    def label(self) -> str:
        return verdict_label(self.verdict)

    @property
    def slug(self) -> str:
        return slugify(self.verdict, 20)

    @property
    def evidence(self) -> str:
        """'measured 30.3% vs claimed 22% (±5%), 2026-11-25'."""
        parts = []
        if self.measured is not None:
            text = "measured " + _with_unit(_num(self.measured), self.unit)
            if self.claimed is not None:
                text += " vs claimed " + _with_unit(_num(self.claimed), self.unit)
            parts.append(text + (f" ({self.tolerance})" if self.tolerance else ""))
        if self.date:
            parts.append(self.date)
        return ", ".join(parts)

    @property
    def text(self) -> str:
        """The verdict, its evidence and where the hook lives, in one line (feeds, plain-text email, JSON)."""
        out = self.label + (f": {self.evidence}" if self.evidence else "")
        if self.hook or self.script:
            out += "; hook " + " ".join(p for p in (self.hook, f"({self.script})" if self.script else "") if p)
        if self.skipped:
            out += f"; last skipped {self.skipped}"
        return out

    def as_json(self) -> dict:
        return {
            "verdict": self.verdict,
            "measured": self.measured,
            "claimed": self.claimed,
            "tolerance": self.tolerance,
            "date": self.date or None,
            "hook": self.hook or None,
            "script": self.script or None,
            "script_url": self.script_url or None,
            "last_skipped": self.skipped or None,
            "text": self.text,
        }


def claim_verdict(view, claim, repo_url: str = "") -> Verdict | None:
    """The verdict shown for a claim: its run's evidence when the view holds the run, else the bare word."""
    word = view.verdicts.get(claim.id)
    if not word:
        return None
    run = view.runs.get(claim.id)
    if run is None:
        return Verdict(word)
    started = getattr(run, "started_at", None)
    skipped = getattr(run, "skipped_at", None)
    script = getattr(run, "script", "") or ""
    url = f"{repo_url}/{script.lstrip('/')}" if repo_url and script else ""
    return Verdict(
        word,
        run.measured,
        run.claimed,
        claim.unit or "",
        tolerance_text(getattr(run, "tolerance", None), getattr(run, "tolerance_kind", None), claim.unit or ""),
        started.date().isoformat() if started else "",
        getattr(run, "hook", "") or "",
        script,
        external_url(url),
        skipped.date().isoformat() if skipped else "",
    )


HTTP_URL = re.compile(r"https?://[^\x00-\x20\x7f/][^\x00-\x20\x7f]*", re.IGNORECASE)


def external_url(url: str | None) -> str:
    """An http(s) URL or '': the renderer does not trust even stored URLs to be safe."""
    url = (url or "").strip()
    return url if HTTP_URL.fullmatch(url) else ""


SiteRun = namedtuple(
    "SiteRun",
    ("id", "claim_id", "verdict", "measured", "claimed", "note", "started_at", "hook", "script", "tolerance",
     "tolerance_kind", "skipped_at"),
)  # fmt: skip
SHOWN_RUNS_SQL = (
    "SELECT r.id, r.claim_id, r.verdict, r.measured, r.claimed, r.note, CAST(r.started_at AS TEXT), h.name, "
    "h.script, h.tolerance, h.tolerance_kind FROM reprorun r LEFT JOIN reprohook h ON h.id = r.hook_id "
    "WHERE r.claim_id IS NOT NULL ORDER BY r.id"
)


def shown_runs(rows: Iterable[tuple]) -> dict[int, SiteRun]:
    """claim id -> the run pages show, from runs oldest first (id, claim_id, verdict, measured, claimed, note,
    started_at, hook, script, tolerance, tolerance_kind): the latest run that measured something (any verdict
    but `skipped`), with `skipped_at` the start of a later skipped run (no GPU); only skipped runs: the latest.
    A skipped run never hides a recorded verdict (issue #17)."""
    shown: dict[int, SiteRun] = {}
    for row in rows:
        run = SiteRun(*row[:6], _datetime(row[6]), *row[7:11], None)
        before = shown.get(run.claim_id)
        if run.verdict != "skipped" or before is None or before.verdict == "skipped":
            shown[run.claim_id] = run
        else:
            shown[run.claim_id] = before._replace(skipped_at=run.started_at)
    return shown


def _datetime(value):
    """PostgreSQL hands back datetimes, SQLite the ISO text SQLAlchemy stored."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def claim_json(claim, shown: Verdict | None) -> dict:
    """A claim as `export` and `search --json` print it, with the verdict the site shows for it."""
    return {
        "id": claim.id,
        "value": claim.value,
        "unit": claim.unit,
        "kind": claim.kind,
        "text": claim.text,
        "verdict": shown.as_json() if shown else None,
    }


class RunsView:
    """What claim_verdict reads of a finding (its claims' shown verdicts and runs), from shown_runs' rows."""

    def __init__(self, runs: dict):
        self.runs = runs
        self.verdicts = {cid: run.verdict for cid, run in runs.items()}
