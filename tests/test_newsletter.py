"""The weekly issue from the database: the week's new suggested topics and its reproduction runs, parsed back."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import datetime

from digest import pipeline, store
from digest.config import load_config
from digest.models import Claim, Item, ItemTopic, ReproHook, ReproRun, SuggestedTopic, Topic
from tests.conftest import write_config

WEEK = "2026-W48"  # Monday 23 to Sunday 29 November 2026


def seeded(tmp_path, db):
    config = load_config(write_config(tmp_path, ""))
    engine = store.open_engine(db.url)
    store.init_db(engine)
    with store.session(engine) as s:
        s.add(Topic(slug="kv-cache", name="KV cache", keywords="[]"))
        for n, published in ((1, datetime(2026, 11, 24, 9)), (2, datetime(2026, 11, 10, 9))):
            s.add(
                Item(id=n, key=f"k{n}", kind="paper", source="arxiv-test", title=f"Paper {n} on KV caches",
                     summary=f"We compress the cache {n + 1}x. It works.", url=f"https://arxiv.org/abs/2611.0000{n}",
                     arxiv_id=f"2611.0000{n}", published=published, content_hash=f"h{n}")
            )  # fmt: skip
        s.flush()
        for n in (1, 2):
            s.add(ItemTopic(item_id=n, topic_slug="kv-cache", score=0.9))
            s.add(Claim(id=n * 10, item_id=n, value=n + 1, unit="x", kind="compression", text=f"{n + 1}x", key=f"c{n}"))
        s.commit()
    return config, engine


def issue(engine, config, tmp_path, week: str = WEEK) -> tuple[str, str]:
    path = pipeline.build_newsletter(engine, config, week, tmp_path / "mail")
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def test_new_suggested_topics_of_the_week_only(tmp_path, db):
    config, engine = seeded(tmp_path, db)
    text, html = issue(engine, config, tmp_path)
    assert "suggested topics" not in text.lower() and "suggested topics" not in html.lower()  # none: no section

    def suggestion(cid: str, label: str, created: datetime) -> SuggestedTopic:
        titles = json.dumps([f"A paper about {label}"])
        terms = json.dumps(label.split())
        return SuggestedTopic(id=cid, label=label, terms=terms, size=4, titles=titles, created_at=created)

    store.replace_suggested_topics(engine, [suggestion("cold", "photonic chips", datetime(2026, 11, 2, 8))])
    # A later clustering run finds the old cluster again (it keeps its first date) and a new one this week.
    store.replace_suggested_topics(
        engine,
        [suggestion("cold", "photonic chips", datetime(2026, 11, 26, 8)),
         suggestion("cnew", "diffusion <b>language</b> models", datetime(2026, 11, 25, 8))],
    )  # fmt: skip
    assert str(db.one("SELECT created_at FROM suggestedtopic WHERE id = 'cold'")).startswith("2026-11-02")
    text, html = issue(engine, config, tmp_path)
    new = text.split("== New suggested topics ==")[1]
    assert "diffusion <b>language</b> models (4 items, id cnew)" in new and "A paper about diffusion" in new
    assert "photonic" not in text and "photonic" not in html
    assert "New suggested topics" in html and "diffusion &lt;b&gt;language&lt;/b&gt; models" in html
    assert "<b>language</b>" not in html
    text, _html = issue(engine, config, tmp_path, "2026-W45")  # the week the old one was first seen
    assert "photonic chips" in text.split("== New suggested topics ==")[1] and "diffusion" not in text


def test_reproductions_are_keyed_by_the_week_of_the_run(tmp_path, db):
    config, engine = seeded(tmp_path, db)
    with store.session(engine) as s:
        hook = ReproHook(command="true", name="h")
        s.add(hook)
        s.flush()
        # Paper 2 is from week 46 but reproduced in week 48; paper 1 (week 48) failed in week 47, then diverged in 48.
        s.add(ReproRun(hook_id=hook.id, claim_id=20, verdict="reproduced", started_at=datetime(2026, 11, 25, 10)))
        s.add(ReproRun(hook_id=hook.id, claim_id=10, verdict="failed", started_at=datetime(2026, 11, 18, 10)))
        s.add(ReproRun(hook_id=hook.id, claim_id=10, verdict="diverged", started_at=datetime(2026, 11, 29, 23, 59)))
        s.commit()
    text, html = issue(engine, config, tmp_path)
    repro = text.split("== Reproductions this week ==")[1]
    assert "* Reproduced: 3x in Paper 2 on KV caches" in repro and "https://digest.test/items/2-" in repro
    assert "* Diverged: 2x in Paper 1 on KV caches" in repro and "Failed" not in repro
    assert "Paper 2" not in text.split("== Reproductions this week ==")[0]  # not one of this week's findings
    assert html.count('class="ok"') == 1 and "Diverged" in html
    text47, _ = issue(engine, config, tmp_path, "2026-W47")  # no findings that week, but a failed run
    assert "* Failed: 2x in Paper 1 on KV caches" in text47 and "Reproduced" not in text47
    text49, _ = issue(engine, config, tmp_path, "2026-W49")
    assert "Reproductions this week" not in text49
