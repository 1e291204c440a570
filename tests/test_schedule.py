"""`digest schedule`: the job list, a bounded foreground run on a persistent job store, and the ingest lock."""

from __future__ import annotations

from datetime import datetime

import pytest

from digest.cli import main
from digest.config import load_config
from digest.lock import run_lock
from tests.conftest import FIXTURES, ROOT, write_config


@pytest.fixture
def cfg(httpserver, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the jobs' child processes run this checkout
    httpserver.expect_request("/feed.xml").respond_with_data((FIXTURES / "feed.xml").read_bytes())
    path = write_config(
        tmp_path,
        f"""
        [[source]]
        name = "blog"
        kind = "rss"
        url = "{httpserver.url_for("/feed.xml")}"
        allow_private = true
        interval_min = 15
        """,
    )
    path.write_text(
        path.read_text().replace(
            'base_url = "https://digest.test/"', 'base_url = "https://digest.test/"\ntimezone = "Europe/Berlin"'
        )
    )
    return path


def test_list_shows_every_job_with_its_schedule(runner, cfg, db):
    result = runner.invoke(main, ["--config", str(cfg), "schedule", "--list"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert set(lines) == {"ingest:blog", "build", "newsletter"}
    assert "every 15 min" in lines["ingest:blog"] and "then tag and claims" in lines["ingest:blog"]
    when = datetime.strptime(" ".join(lines["newsletter"].split()[2:4]), "%Y-%m-%d %H:%M")
    assert when.weekday() == 0 and (when.hour, when.minute) == (7, 0)
    assert "CET" in lines["newsletter"] or "CEST" in lines["newsletter"]  # [site] timezone, not the machine's


def test_bounded_run_ingests_and_persists_jobs_once(runner, cfg, db, httpserver):
    for _ in range(2):  # a restart replaces the persistent jobs instead of adding copies
        result = runner.invoke(main, ["--config", str(cfg), "schedule", "--for", "6"])
        assert result.exit_code == 0, result.output
    ids = sorted(r[0] for r in db.rows("SELECT id FROM apscheduler_jobs"))
    assert ids == ["build", "ingest:blog", "newsletter"]
    assert db.one("SELECT count(*) FROM item WHERE source='blog'") == 2  # ingested at start
    assert len([r for r, _ in httpserver.log if r.path == "/feed.xml"]) == 2


def test_once_runs_tag_and_claims_after_an_ingest_that_brought_something(runner, cfg, db):
    result = runner.invoke(main, ["--config", str(cfg), "schedule", "--once"])
    assert "ingest:blog                      exit 0" in result.output, result.output
    assert db.one("SELECT count(*) FROM claim") > 0  # tag and claims ran, because something was new


def test_scheduled_ingest_respects_a_manual_runs_lock(runner, cfg, db, httpserver):
    config = load_config(cfg)
    with run_lock(db.engine, config.workspace):
        result = runner.invoke(main, ["--config", str(cfg), "schedule", "--once"])
    assert "ingest:blog                      exit 1" in result.output
    assert "another ingest is already running" in result.output
    assert httpserver.log == []
    assert db.one("SELECT count(*) FROM item") == 0


def test_bad_timezone_is_a_clean_error(runner, tmp_path, db):
    cfg = write_config(tmp_path, "", extra="")
    cfg.write_text(cfg.read_text().replace('title = "Test Digest"', 'title = "T"\ntimezone = "Mars/Olympus"'))
    result = runner.invoke(main, ["--config", str(cfg), "schedule", "--list"])
    assert result.exit_code == 1 and "field 'timezone' is not a known time zone" in result.output
