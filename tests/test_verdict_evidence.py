"""Verdicts with their evidence everywhere they show, and a skipped run never hides a measured verdict."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
from datetime import datetime

import feedparser

from digest import pipeline, render, store
from digest.models import Claim, Item, ReproHook, ReproRun
from tests.test_site_incremental import NOW, seeded

SUMMARY = "We study routing. Our router reaches a 22% lower loss on C4. Training takes 3 days."
EVIDENCE = "measured 30.3% vs claimed 22% (±5%), 2026-11-25"


def add_finding_with_runs(engine, runs: list[tuple[str, float | None, datetime]]) -> int:
    """A finding whose 22% claim has a hook (repro/router/run.py) and these runs (verdict, measured, start)."""
    with store.session(engine) as s:
        s.add(
            Item(
                id=500,
                key="k500",
                kind="paper",
                source="arxiv-test",
                arxiv_id="2611.00500",
                title="A router",
                summary=SUMMARY,
                url="https://arxiv.org/abs/2611.00500",
                authors=json.dumps(["A One", "B Two", "C Three", "D Four"]),
                published=NOW,
                content_hash="h500",
            )
        )
        s.flush()
        start = SUMMARY.index("22%")
        sentence_start = SUMMARY.index("Our router")
        claim = Claim(
            item_id=500,
            value=22,
            unit="%",
            kind="loss",
            text=SUMMARY[sentence_start : SUMMARY.index("C4.") + 3],
            start=start - sentence_start,
            end=start - sentence_start + 3,
            key="c500",
        )
        s.add(claim)
        s.flush()
        hook = ReproHook(claim_id=claim.id, name="router-loss", command="python {script}", script="repro/router/run.py")
        s.add(hook)
        s.flush()
        for verdict, measured, when in runs:
            s.add(
                ReproRun(
                    hook_id=hook.id, claim_id=claim.id, verdict=verdict, measured=measured, claimed=22, started_at=when
                )
            )
        s.commit()
        return claim.id


def test_shown_run_is_the_latest_measured_one_and_a_later_skip_is_dated():
    rows = [
        (1, 7, "diverged", 30.26, 22.0, "", "2026-11-25 09:00:00", "h", "repro/h.py", 0.05, "relative"),
        (2, 7, "skipped", None, 22.0, "", "2026-11-30 09:00:00", "h", "repro/h.py", 0.05, "relative"),
        (3, 8, "skipped", None, 5.0, "", "2026-11-28 09:00:00", "g", "", 0.05, "relative"),
        (4, 9, "reproduced", 5.0, 5.0, "", "2026-11-20 09:00:00", "g", "", 0.05, "relative"),
        (5, 9, "failed", None, 5.0, "", "2026-11-21 09:00:00", "g", "", 0.05, "relative"),
    ]
    shown = store.shown_runs(rows)
    assert shown[7].verdict == "diverged" and shown[7].id == 1 and shown[7].skipped_at == datetime(2026, 11, 30, 9)
    assert shown[8].verdict == "skipped" and shown[8].skipped_at is None  # only skipped runs: that one
    assert shown[9].verdict == "failed"  # a failed run is a real outcome, not a skip


def test_a_skipped_run_keeps_the_measured_verdict_with_its_evidence_on_every_surface(tmp_path, db):
    config, engine = seeded(tmp_path, db, 3)
    config = dataclasses.replace(
        config, site=dataclasses.replace(config.site, repo_url="https://git.test/o/r/blob/main")
    )
    claim_id = add_finding_with_runs(
        engine, [("diverged", 30.26, datetime(2026, 11, 25, 9)), ("skipped", None, datetime(2026, 11, 30, 9))]
    )
    view = next(v for v in store.site_views(engine, [500]))
    assert view.verdicts == {claim_id: "diverged"}
    out = tmp_path / "site"
    pipeline.build_site(engine, config, out, search=False)

    page = (out / render.item_path(view)).read_text()
    assert 'class="verdict verdict-diverged"' in page and EVIDENCE in page
    assert "hook router-loss" in page and 'href="https://git.test/o/r/blob/main/repro/router/run.py"' in page
    assert "last skipped 2026-11-30" in page and "not checked" not in page
    week = (out / render.week_path(render.week_of(view))).read_text()
    assert EVIDENCE in week  # the card
    claims = json.loads((out / "claims.json").read_text())
    row = next(r for r in claims if r["claim_id"] == claim_id)
    assert row["verdict"] == "diverged" and row["reproduction"]["text"].startswith("diverged: " + EVIDENCE)
    assert row["reproduction"]["script_url"] == "https://git.test/o/r/blob/main/repro/router/run.py"
    assert row["reproduction"]["last_skipped"] == "2026-11-30"
    entry = next(e for e in feedparser.parse((out / "feed.atom").read_bytes()).entries if "router" in e.title)
    assert EVIDENCE in entry.summary
    jf = json.loads((out / "feed.json").read_text())
    item = next(i for i in jf["items"] if i["title"] == "A router")
    assert item["_digest"]["verdict"]["measured"] == 30.26 and EVIDENCE in item["summary"]


def test_only_skipped_runs_read_not_checked(tmp_path, db):
    config, engine = seeded(tmp_path, db, 2)
    add_finding_with_runs(engine, [("skipped", None, datetime(2026, 11, 30, 9))])
    view = next(v for v in store.site_views(engine, [500]))
    f = render.Finding(view, {}, config.site)
    assert f.headline_verdict.label == "not checked" and f.headline_verdict.evidence == "2026-11-30"


def test_the_newsletter_lists_the_weeks_measured_run_even_when_a_skip_came_after(tmp_path, db):
    config, engine = seeded(tmp_path, db, 2)
    add_finding_with_runs(
        engine, [("diverged", 30.26, datetime(2026, 11, 25, 9)), ("skipped", None, datetime(2026, 11, 27, 9))]
    )
    _views, _topics, extra = pipeline.newsletter_inputs(engine, "2026-W48")
    assert [(view.item.id, verdict) for view, _claim, verdict in extra["reproductions"]] == [(500, "diverged")]
    path = pipeline.build_newsletter(engine, config, "2026-W48", tmp_path / "mail")
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()
    assert "Diverged: 22% in A router" in text and EVIDENCE in text


def test_tolerance_and_evidence_wording():
    assert render.tolerance_text(0.05, "relative", "%") == "±5%"
    assert render.tolerance_text(0.5, "absolute", "pts") == "±0.5 pts"
    assert render.tolerance_text(0.1, "at-least", "x") == "at least claimed −10%"
    assert render.tolerance_text(None, "relative", "x") == ""
    v = render.Verdict("reproduced", 14200.0, 14000.0, "tok/s", "±5%", "2026-11-25", "thr", "repro/thr/run.py")
    assert v.evidence == "measured 14,200 tok/s vs claimed 14,000 tok/s (±5%), 2026-11-25"
    assert v.text == "reproduced: " + v.evidence + "; hook thr (repro/thr/run.py)"
    assert render.Verdict("failed", date="2026-11-25").text == "failed: 2026-11-25"
