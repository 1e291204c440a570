"""`digest schedule`: the job list, a bounded foreground run on a persistent job store, and the ingest lock."""

from __future__ import annotations

import email
from datetime import UTC, datetime

import pytest

from digest.cli import main
from digest.config import load_config
from digest.lock import exclusive, lock_path
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
        result = runner.invoke(main, ["--config", str(cfg), "schedule", "--for", "2"])
        assert result.exit_code == 0, result.output
    ids = sorted(r[0] for r in db.rows("SELECT id FROM apscheduler_jobs"))
    assert ids == ["build", "ingest:blog", "newsletter"]
    assert db.one("SELECT count(*) FROM item WHERE source='blog'") == 2  # ingested at start
    assert db.one("SELECT count(*) FROM claim") > 0  # then tag and claims ran, because something was new
    assert len([r for r, _ in httpserver.log if r.path == "/feed.xml"]) == 2


def test_scheduled_ingest_respects_a_manual_runs_lock(runner, cfg, db, httpserver):
    config = load_config(cfg)
    with exclusive(lock_path(db.url, config.workspace)):
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


# --- the Monday newsletter: the week in [site] timezone (injected clock), build first, then sent (#17) ---


@pytest.fixture
def mailbox():
    from aiosmtpd.controller import Controller

    from tests.test_deliver import Mailbox, free_port

    box = Mailbox()
    box.port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


def newsletter_config(httpserver, tmp_path, port: int | None, send: bool = True):
    from tests.publish_data import published

    smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n' if port else ""
    extra = f'[newsletter]\nsender = "Digest <digest@digest.test>"\nsend = {str(send).lower()}\n{smtp}'
    path = published(httpserver, tmp_path, extra=extra)
    path.write_text(path.read_text().replace('base_url = "https://digest.test/"', TZ_LINE))
    return path


TZ_LINE = 'base_url = "https://digest.test/"\ntimezone = "Pacific/Auckland"'
# Sunday 2026-11-29 20:00 UTC is Monday 30 November 09:00 in Auckland: last week there is 2026-W48; on the
# UTC calendar (what date.today() gives on a UTC host) it would be 2026-W47.
SUNDAY_EVENING_UTC = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)


def test_last_week_follows_the_site_timezone():
    from zoneinfo import ZoneInfo

    from digest.schedule import last_week

    assert last_week(SUNDAY_EVENING_UTC, ZoneInfo("Pacific/Auckland")) == "2026-W48"
    assert last_week(SUNDAY_EVENING_UTC, ZoneInfo("UTC")) == "2026-W47"
    assert last_week(datetime(2027, 1, 4, 12, tzinfo=UTC), ZoneInfo("UTC")) == "2026-W53"


def test_newsletter_job_builds_then_sends_last_week_in_the_site_timezone(
    runner, httpserver, tmp_path, db, mailbox, monkeypatch
):
    from digest.schedule import newsletter_job

    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the job's child processes run this checkout
    cfg = newsletter_config(httpserver, tmp_path, mailbox.port)
    assert (
        runner.invoke(main, ["--config", str(cfg), "subscribers", "add", "a@example.org", "b@example.org"]).exit_code
        == 0
    )
    assert newsletter_job(str(cfg), db.url, clock=lambda: SUNDAY_EVENING_UTC) == 0
    subjects = [email.message_from_bytes(raw)["Subject"] for _, raw in mailbox.accepted]
    assert len(subjects) == 2 and all(s.startswith("Digest, week 2026-W48:") for s in subjects), subjects
    assert (load_config(cfg).site.out_dir / "index.html").exists()  # the site was built first
    assert db.rows("SELECT issue, status FROM sendledger") == [("2026-W48", "sent")] * 2
    assert newsletter_job(str(cfg), db.url, clock=lambda: SUNDAY_EVENING_UTC) == 0  # a rerun: the ledger holds
    assert len(mailbox.accepted) == 2


def test_scheduled_newsletter_is_only_written_when_sending_is_off_or_unset(
    runner, httpserver, tmp_path, db, mailbox, monkeypatch
):
    import os

    for name in [k for k in os.environ if k.startswith("DIGEST_SMTP_")]:
        monkeypatch.delenv(name)  # an exported DIGEST_SMTP_* counts as an [smtp] setting
    for port, send, reason in ((mailbox.port, False, "[newsletter] send = false"), (None, True, "no [smtp]")):
        folder = tmp_path / f"{send}-{port}"
        folder.mkdir()
        cfg = newsletter_config(httpserver, folder, port, send=send)
        runner.invoke(main, ["--config", str(cfg), "subscribers", "add", "a@example.org"])
        result = runner.invoke(main, ["--config", str(cfg), "newsletter", "--week", "2026-W48", "--scheduled"])
        assert result.exit_code == 0, result.output
        assert f"Not sent: {reason}" in result.output and "digest-2026-W48.eml" in result.output
    quiet = runner.invoke(main, ["--config", str(cfg), "newsletter", "--week", "2026-W02", "--scheduled"])
    assert quiet.exit_code == 0 and "Not sent: no findings in 2026-W02" in quiet.output  # a quiet week: no error
    assert mailbox.accepted == []


def test_cron_and_systemd_examples_build_then_run_the_scheduled_newsletter():
    monday = [line for line in (ROOT / "cron" / "crontab").read_text().splitlines() if " * * 1 " in line]
    assert len(monday) == 1 and "digest build && .venv/bin/digest newsletter --scheduled" in monday[0]
    service = (ROOT / "cron" / "digest-newsletter.service").read_text()
    starts = [line for line in service.splitlines() if line.startswith("ExecStart=")]
    assert starts[0].endswith("digest build") and starts[1].endswith("digest newsletter --scheduled")
    assert "OnCalendar=Mon" in (ROOT / "cron" / "digest-newsletter.timer").read_text()
