"""Top picks: the ranking is pure and explainable; the newsletter shows them with authors, headline and links."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime

from digest import pipeline, store
from digest.headline import Headline
from digest.models import Claim, Item, ItemTopic, ReproHook, ReproRun
from digest.picks import Candidate, pick_score, top_picks
from tests.test_newsletter import WEEK, seeded


def headline(baseline=None, direction="") -> Headline:
    return Headline(2.0, None, "x", "speedup", direction, baseline, "2x faster")


def test_pick_score_adds_headline_strength_verdict_coverage_and_code():
    assert pick_score(Candidate("a", None, "reproduced", 3, True)) == 0  # no headline, no pick
    assert pick_score(Candidate("a", headline())) == 2
    assert pick_score(Candidate("a", headline(baseline=1.0, direction="higher"))) == 4
    assert pick_score(Candidate("a", headline(), "reproduced")) == 5
    assert pick_score(Candidate("a", headline(), "diverged")) == 0
    assert pick_score(Candidate("a", headline(), None, coverage=5, has_code=True)) == 5  # coverage counts up to 2


def test_top_picks_best_first_ties_by_order_and_at_most_five():
    cands = [
        Candidate("plain", headline(), order=0),
        Candidate("reproduced", headline(), "reproduced", order=1),
        Candidate("none", None, "reproduced", 2, True, order=2),
        Candidate("diverged", headline(), "diverged", order=3),
        Candidate("covered", headline(), None, 1, True, order=4),
        *[Candidate(f"more{n}", headline(), order=5 + n) for n in range(5)],
    ]
    picks = top_picks(cands)
    assert picks == ["reproduced", "covered", "plain", "more0", "more1"]
    assert "none" not in top_picks(cands, 50) and "diverged" not in top_picks(cands, 50)  # score 0: never picked


def test_newsletter_shows_top_picks_authors_one_liner_headline_and_links(tmp_path, db):
    config, engine = seeded(tmp_path, db)
    with store.session(engine) as s:
        s.add(
            Item(id=3, key="k3", kind="paper", source="arxiv-test", title="Paper 3 on fast drafts",
                 summary="We draft faster. Our drafter reaches a 3.5x speedup over EAGLE-3 on Llama.",
                 url="https://arxiv.org/abs/2611.00003", pdf_url="https://arxiv.org/pdf/2611.00003",
                 arxiv_id="2611.00003", authors=json.dumps(["Ann A", "Bob B", "Cid C", "Dee D"]),
                 code_urls=json.dumps(["https://github.com/x/y"]), published=datetime(2026, 11, 25, 9),
                 content_hash="h3")
        )  # fmt: skip
        s.flush()
        s.add(ItemTopic(item_id=3, topic_slug="kv-cache", score=0.8))
        s.add(Claim(id=30, item_id=3, value=3.5, unit="x", kind="speedup", text="Our drafter reaches a 3.5x speedup "
                    "over EAGLE-3 on Llama.", start=22, end=26, key="c3"))  # fmt: skip
        hook = ReproHook(claim_id=30, command="true", name="drafts", script="repro/drafts/run.py", tolerance=0.05)
        s.add(hook)
        s.flush()
        s.add(ReproRun(hook_id=hook.id, claim_id=30, verdict="reproduced", measured=3.4, claimed=3.5,
                       started_at=datetime(2026, 11, 26, 9)))  # fmt: skip
        s.commit()
    path = pipeline.build_newsletter(engine, config, WEEK, tmp_path / "mail")
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text, html = msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()
    picks = text.split("== Top picks ==")[1]
    assert "== KV cache ==" not in text  # both findings are picks, each shown once
    assert picks.index("Paper 3 on fast drafts") < picks.index("Paper 1 on KV caches")  # reproduced, with code
    assert "Ann A, Bob B, Cid C et al." in picks and "Dee D" not in text
    assert "We draft faster." in picks or "3.5x speedup" in picks  # the one-liner
    assert "Headline: " in picks and "(reproduced: measured 3.4x vs claimed 3.5x (±5%), 2026-11-26)" in picks
    assert "arXiv: https://arxiv.org/abs/2611.00003" in picks and "PDF: https://arxiv.org/pdf/2611.00003" in picks
    assert ">Top picks</h2>" in html and 'href="https://arxiv.org/pdf/2611.00003"' in html
    assert "Ann A, Bob B, Cid C et al." in html
