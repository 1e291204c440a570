"""`digest schedule`: the job list, a bounded foreground run on a persistent job store, and the ingest lock."""

from __future__ import annotations

import email
from datetime import UTC, datetime

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


# --- issue #17: locks that hold across spellings, processes and hosts ---------------------------------

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

from digest import pipeline, store  # noqa: E402
from digest.errors import DigestError  # noqa: E402


def test_two_ingests_through_a_symlinked_path_to_one_database_exclude(cfg, tmp_path, db):
    if db.dialect != "sqlite":
        pytest.skip("a file lock belongs to SQLite")
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    (tmp_path / "db-link.db").symlink_to(real / "digest.db")
    config = load_config(cfg)
    engine = store.open_engine(f"sqlite:///{real / 'digest.db'}")
    store.init_db(engine)
    for spelling in (
        tmp_path / "link" / "digest.db",
        tmp_path / "db-link.db",
        tmp_path / "link" / ".." / "real" / "digest.db",
    ):
        other = store.open_engine(f"sqlite:///{spelling}")
        with run_lock(other, config.workspace), pytest.raises(DigestError, match="another ingest is already running"):
            pipeline.ingest(engine, config)
        other.dispose()
    assert store.counts(engine)["items"] == 0
    engine.dispose()


HOLDER = """
import sys
from pathlib import Path
from digest import store
from digest.lock import run_lock
engine = store.open_engine(sys.argv[1])
with run_lock(engine, Path(sys.argv[2])):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_two_hosts_sharing_one_postgresql_never_ingest_at_once(cfg, tmp_path, db, httpserver):
    """Host A holds the ingest; host B (another process, another workspace: only the database is shared)
    is refused until A ends, even when A is killed."""
    if db.dialect != "postgresql":
        pytest.skip("the advisory lock is PostgreSQL's (DIGEST_TEST_PG)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    host_b = tmp_path / "host-b"
    host_b.mkdir()
    cfg_b = host_b / "digest.toml"
    cfg_b.write_text(cfg.read_text())
    (host_b / "topics.toml").write_text((cfg.parent / "topics.toml").read_text())
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, db.url, str(tmp_path / "host-a")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        b = subprocess.run(
            [sys.executable, "-m", "digest", "--config", str(cfg_b), "--db", db.url, "ingest"],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        assert b.returncode == 1
        assert b.stderr.strip().splitlines() == [
            "Error: another ingest is already running (PostgreSQL advisory lock 'digest:ingest')"
        ]
        assert httpserver.log == []
    finally:
        holder.kill()  # a killed host frees the lock with its session
        holder.wait()
    b = subprocess.run(
        [sys.executable, "-m", "digest", "--config", str(cfg_b), "--db", db.url, "ingest"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert b.returncode == 0, b.stderr
    assert db.one("SELECT count(*) FROM item WHERE source='blog'") == 2


def test_two_schedulers_sharing_one_postgresql_run_each_job_once(cfg, tmp_path, db, httpserver):
    if db.dialect != "postgresql":
        pytest.skip("schedulers on several hosts share PostgreSQL (DIGEST_TEST_PG)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    host_b = tmp_path / "host-b"
    host_b.mkdir()
    (host_b / "digest.toml").write_text(cfg.read_text())
    (host_b / "topics.toml").write_text((cfg.parent / "topics.toml").read_text())

    def scheduler(config_file):
        argv = [sys.executable, "-m", "digest", "--config", str(config_file), "--db", db.url, "schedule", "--for", "8"]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)

    a = scheduler(cfg)
    assert a.stdout.readline().startswith("Scheduler running")
    feed_requests = lambda: [r for r, _ in httpserver.log if r.path == "/feed.xml"]  # noqa: E731
    pause = threading.Event()
    b = None
    try:
        for _ in range(400):  # host B starts once host A has ingested (its job store says: next in 15 min)
            if feed_requests():
                break
            pause.wait(0.05)
        b = scheduler(host_b / "digest.toml")
        out_b, _ = b.communicate(timeout=60)
        out_a, _ = a.communicate(timeout=60)
    finally:
        for p in (a, b):
            if p is not None and p.poll() is None:
                p.kill()
    assert a.returncode == 0 and b.returncode == 0, (out_a, out_b)
    assert len(feed_requests()) == 1  # ingested by one host only
    assert db.one("SELECT count(*) FROM sourcerun WHERE source='blog'") == 1


def test_for_ends_on_its_own_clock_even_with_a_job_running(runner, tmp_path, db, monkeypatch):
    """`--for 1` with an ingest stuck on a server that never answers: the command is stopped at the end
    (killed: ingest is crash-safe), instead of the scheduler waiting for it."""
    import socket

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    source = f'[[source]]\nname = "stall"\nkind = "rss"\nurl = "http://127.0.0.1:{port}/feed"\nallow_private = true\n'
    cfg = write_config(tmp_path, source)
    cfg.write_text(cfg.read_text().replace("timeout_s = 3.0", "timeout_s = 300.0"))
    assert runner.invoke(main, ["--config", str(cfg), "init"]).exit_code == 0
    try:
        result = runner.invoke(main, ["--config", str(cfg), "schedule", "--for", "1"])
    finally:
        listener.close()
    assert result.exit_code == 0, result.output
    assert "digest ingest --source stall: stopped, the scheduler's --for time is up" in result.output
    assert db.one("SELECT count(*) FROM sourcerun") == 0  # the child was ended, not waited for


def test_lock_path_is_one_for_every_spelling_of_a_sqlite_url(tmp_path):
    from digest.lock import lock_path

    (tmp_path / "link").symlink_to(tmp_path)
    spellings = [
        f"sqlite:///{tmp_path}/d.db",
        f"sqlite+pysqlite:///{tmp_path}/d.db",
        f"sqlite:///{tmp_path}/link/d.db?timeout=5",
        f"sqlite:///{tmp_path}/./link/./d.db",
    ]
    assert {lock_path(url, tmp_path / "ws") for url in spellings} == {tmp_path.resolve() / "d.db.ingest.lock"}


@pytest.mark.parametrize("seconds", ["nan", "inf", "-5", "0"])
def test_for_must_be_a_positive_number_of_seconds(runner, cfg, seconds):
    result = runner.invoke(main, ["--config", str(cfg), "schedule", "--for", seconds])
    assert result.exit_code == 1
    assert result.output.strip().endswith("must be a positive number of seconds")


def test_a_very_short_for_still_stops(cfg, db):
    """The stop timer starts with the scheduler: one that fired before the scheduler ran was lost, and the
    scheduler then ran for good (a child process, so that a regression fails instead of hanging)."""
    argv = [sys.executable, "-m", "digest", "--config", str(cfg), "--db", db.url, "schedule", "--for", "0.001"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("schedule --for 0.001 did not stop")
    assert proc.returncode == 0, proc.stderr


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
