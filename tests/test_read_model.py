"""One truth for a finding (issue #17 point 15): the site, the newsletter, `export` and `search --json` read a
finding's claims, their shown verdicts and its coverage the same way, on one database."""

from __future__ import annotations

import email
import json
from datetime import datetime, timedelta

from digest import pipeline, render, store
from digest.cli import main
from digest.config import load_config
from digest.models import Claim, Item, ReproHook, ReproRun
from digest.parse import Entry
from tests.conftest import write_config

NOW = datetime(2026, 11, 18, 12, 0)


def build(db, tmp_path, runner):
    cfg = write_config(tmp_path, "")
    engine = store.open_engine(db.url)
    store.init_db(engine)
    paper = Entry(
        key="arxiv:2611.00001", title="Faster drafts", url="https://arxiv.org/abs/2611.00001", kind="paper",
        summary="We present a drafter. It decodes 2.1x faster than the baseline. Memory use drops by 31%.",
        arxiv_id="2611.00001", arxiv_version=1, published=NOW, authors=["Ada Lovelace"],
    )  # fmt: skip
    store.save_entries(engine, "arxiv", [paper])
    assert runner.invoke(main, ["--config", str(cfg), "claims"]).exit_code == 0
    with store.session(engine) as s:
        item = s.exec(store.select(Item)).one()
        speed = s.exec(store.select(Claim).where(Claim.unit == "x")).one()
        gone = Claim(item_id=item.id, value=9, unit="x", kind="speedup", text="An old 9x.", vanished=True, key="old")
        s.add(gone)
        s.add(Item(key="blog|post", kind="post", source="blog", title="A post on it", url="https://b.test/p",
                   published=NOW + timedelta(hours=1), covers_item_id=item.id, content_hash="p"))  # fmt: skip
        hook, old_hook = ReproHook(command="true", name="speed", script="repro/speed/run.py"), ReproHook(command="true")
        s.add_all([hook, old_hook])
        s.flush()
        t = NOW + timedelta(days=1)
        # Measured on a GPU (diverged), then skipped here (no GPU): the diverged verdict stays the one shown.
        s.add(ReproRun(hook_id=hook.id, claim_id=speed.id, verdict="diverged", measured=1.4, claimed=2.1, started_at=t))
        s.add(ReproRun(hook_id=hook.id, claim_id=speed.id, verdict="skipped", started_at=t + timedelta(hours=1)))
        # A claim that left the text keeps its hook and a reproduced run: no output may show or match it.
        s.add(ReproRun(hook_id=old_hook.id, claim_id=gone.id, verdict="reproduced", measured=9, started_at=t))
        s.commit()
        ids = (item.id, speed.id, gone.id)
    return cfg, engine, ids


def cli_json(runner, cfg, *args):
    result = runner.invoke(main, ["--config", str(cfg), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_site_newsletter_export_and_search_agree(db, tmp_path, runner):
    cfg, engine, (_item_id, speed_id, gone_id) = build(db, tmp_path, runner)
    exported = json.loads(cli_json(runner, cfg, "export").splitlines()[0])
    (searched,) = json.loads(cli_json(runner, cfg, "search", "drafts", "--json"))
    views = store.site_views(engine)
    out, _ = pipeline.build_site(engine, load_config(cfg), tmp_path / "site", search=False)  # the production path
    site_rows = json.loads((out / "claims.json").read_bytes())
    site = {r["claim_id"]: r for r in site_rows}

    # Same claims, same order, none that left the text.
    for out in (exported, searched):
        assert [c["id"] for c in out["claims"]] == [r["claim_id"] for r in site_rows]
        assert gone_id not in [c["id"] for c in out["claims"]]
        for c in out["claims"]:
            shown = site[c["id"]]["reproduction"]
            assert c["verdict"] == shown and (c["value"], c["unit"]) == (site[c["id"]]["value"], site[c["id"]]["unit"])
    speed = next(c for c in exported["claims"] if c["id"] == speed_id)
    assert speed["verdict"]["verdict"] == "diverged" and speed["verdict"]["last_skipped"]  # skipped never hides it
    assert "measured 1.4x vs claimed 2.1x" in speed["verdict"]["text"]
    # The same one-liner, headline and coverage everywhere.
    f = render.finding(views[0])
    for out in (exported, searched):
        assert out["one_line"] == f.one_line
        assert out["headline"] == (f.headline.as_json() if f.headline else None)
        assert out["coverage"] == [p.url for p in views[0].coverage] == ["https://b.test/p"]
    # The newsletter shows the headline's verdict as the site words it.
    path = pipeline.build_newsletter(engine, load_config(cfg), "2026-W47", tmp_path / "mail")
    text = email.message_from_bytes(path.read_bytes(), policy=email.policy.default).get_body(("plain",)).get_content()
    if f.headline and f.headline_verdict:
        assert f.headline_verdict.text in text
    # Search filters read the shown verdicts too: the vanished claim's "reproduced" matches nothing.
    assert json.loads(cli_json(runner, cfg, "search", "--reproduced", "--json")) == []
    engine.dispose()
