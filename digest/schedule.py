"""`digest schedule`: APScheduler in the foreground running the same commands as cron, one at a time."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.config import Config
from digest.errors import ConfigError

log = logging.getLogger("digest.schedule")
STOPPED = 124  # a command's exit code when `--for` ended it (or it never started)


@dataclass(frozen=True)
class JobSpec:
    """One persistent job: a stable id, its trigger, and the module-level function it calls."""

    id: str
    trigger: object
    func: object
    args: tuple
    describe: str


def job_specs(config: Config, config_path: str, db_url: str) -> list[JobSpec]:
    """Every source on its interval (then tag and claims), the site daily, the newsletter on Mondays."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    tz = timezone(config)
    specs = []
    for source in config.sources:
        minutes = source.interval_min or config.fetch.interval_min
        specs.append(
            JobSpec(
                id=f"ingest:{source.name}",
                trigger=IntervalTrigger(minutes=minutes, timezone=tz),
                func=ingest_job,
                args=(config_path, db_url, source.name),
                describe=f"every {minutes} min: ingest --source {source.name}, then tag and claims if anything changed",
            )
        )
    specs.append(
        JobSpec(
            "build",
            CronTrigger(hour=6, minute=0, timezone=tz),
            command_job,
            (config_path, db_url, ["build"]),
            "daily 06:00: build",
        )
    )
    specs.append(
        JobSpec(
            "newsletter",
            CronTrigger(day_of_week="mon", hour=7, minute=0, timezone=tz),
            newsletter_job,
            (config_path, db_url),
            "Mondays 07:00: build, then newsletter --week <last week> --scheduled (sends when [smtp] is set)",
        )
    )
    return specs


def timezone(config: Config) -> ZoneInfo:
    try:
        return ZoneInfo(config.site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{config.path}: [site]: field 'timezone' is not a known time zone") from None


def next_runs(specs: list[JobSpec], now: datetime) -> list[tuple[JobSpec, datetime]]:
    return [(s, s.trigger.get_next_fire_time(None, now)) for s in specs]


def run(config: Config, config_path: str, db_url: str, seconds: float | None = None) -> None:
    """Start a BlockingScheduler on a job store in the same database; stop after `seconds` if given.

    On PostgreSQL several hosts may run `digest schedule` on one database: advisory locks make one of them
    at a time pick due jobs (each runs once), and a scheduler that starts while another is alive keeps the
    stored next run times instead of ingesting everything again at start."""
    import threading

    from apscheduler.events import EVENT_SCHEDULER_STARTED
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.blocking import BlockingScheduler

    started = time.monotonic()  # `seconds` counts from here, on this clock
    coordinator = Coordinator(db_url) if _is_postgresql(db_url) else None

    class Scheduler(BlockingScheduler):
        def _process_jobs(self):
            if coordinator is None:
                return super()._process_jobs()
            with coordinator.picking():
                return super()._process_jobs()

    global _stop_at
    scheduler = Scheduler(
        jobstores={"default": SQLAlchemyJobStore(url=db_url)},
        executors={"default": ThreadPoolExecutor(1)},  # one job at a time: ingests never race each other
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        timezone=timezone(config),
    )
    try:
        stored = coordinator.join() if coordinator else None  # None: no other scheduler is alive
        now = datetime.now(timezone(config))
        for spec in job_specs(config, config_path, db_url):
            first = now if spec.id.startswith("ingest:") else None  # ingest at start, then on the interval
            if stored and spec.id in stored:
                first = stored[spec.id]  # another host's scheduler already runs this job
            scheduler.add_job(
                spec.func,
                spec.trigger,
                args=list(spec.args),
                id=spec.id,
                name=spec.describe,
                replace_existing=True,
                next_run_time=first or spec.trigger.get_next_fire_time(None, now),
            )
        if coordinator:  # the jobs are in the store once the scheduler has started: others may join now
            scheduler.add_listener(lambda _event: coordinator.joined(), EVENT_SCHEDULER_STARTED)
        if seconds is not None:
            _stop_at = started + seconds

            def stop_later(_event) -> None:  # only a running scheduler can be shut down
                timer = threading.Timer(max(0.0, _stop_at - time.monotonic()), lambda: scheduler.shutdown(wait=True))
                timer.daemon = True
                timer.start()

            scheduler.add_listener(stop_later, EVENT_SCHEDULER_STARTED)
        log.info("scheduler started with %d jobs", len(scheduler.get_jobs()))
        scheduler.start()
    finally:
        _stop_at = None
        if coordinator:
            coordinator.close()


_stop_at: float | None = None  # monotonic time `--for` ends: a running command is stopped there


def _is_postgresql(db_url: str) -> bool:
    from sqlalchemy.engine import make_url

    return make_url(db_url).get_backend_name() == "postgresql"


class Coordinator:
    """Advisory locks on one dedicated connection, for schedulers on several hosts sharing one database:
    'start' while a scheduler adds its jobs, 'alive' (shared) for as long as one runs, 'pick' while one
    picks due jobs and moves their next run time on (so the others find them no longer due)."""

    def __init__(self, db_url: str):
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        from digest.lock import advisory_key

        self.engine = create_engine(db_url, poolclass=NullPool)  # one connection, closed with the scheduler
        self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.keys = {k: advisory_key(f"digest:scheduler:{k}") for k in ("start", "alive", "pick")}
        self._starting = False

    def _sql(self, sql: str, key: str):
        from sqlalchemy import text

        return self.conn.execute(text(sql), {"k": self.keys[key]}).scalar()

    def join(self) -> dict[str, datetime] | None:
        """Take 'start'; None when no other scheduler is alive, else the stored next run times."""
        self._sql("SELECT pg_advisory_lock(:k)", "start")
        self._starting = True
        alone = bool(self._sql("SELECT pg_try_advisory_lock(:k)", "alive"))
        if alone:
            self._sql("SELECT pg_advisory_unlock(:k)", "alive")
        self._sql("SELECT pg_advisory_lock_shared(:k)", "alive")
        if alone:
            return None
        return stored_next_runs(self.conn)

    def joined(self) -> None:
        if self._starting:
            self._starting = False
            self._sql("SELECT pg_advisory_unlock(:k)", "start")

    @contextmanager
    def picking(self):
        self._sql("SELECT pg_advisory_lock(:k)", "pick")
        try:
            yield
        finally:
            self._sql("SELECT pg_advisory_unlock(:k)", "pick")

    def close(self) -> None:
        self.conn.close()  # ends the session: every lock it held is released
        self.engine.dispose()


def stored_next_runs(conn) -> dict[str, datetime]:
    """The job store's next run times (UTC), by job id; empty when the store has no table yet."""
    from datetime import UTC

    from sqlalchemy import inspect, text

    if not inspect(conn).has_table("apscheduler_jobs"):
        return {}
    rows = conn.execute(text("SELECT id, next_run_time FROM apscheduler_jobs WHERE next_run_time IS NOT NULL"))
    return {job_id: datetime.fromtimestamp(when, UTC) for job_id, when in rows}


def digest_command(config_path: str, db_url: str, args: list[str]) -> int:
    """Run one `digest` command in a child process, as cron would: a crash or a model load never stays behind."""
    argv = [sys.executable, "-m", "digest", "--config", config_path, "--db", db_url, *args]
    left = None if _stop_at is None else _stop_at - time.monotonic()
    if left is not None and left <= 0:
        log.info("digest %s: not started, the scheduler is stopping", " ".join(args))
        return STOPPED
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=left)
    except subprocess.TimeoutExpired:  # killed: every command is crash-safe, the next run carries on
        print(f"digest {' '.join(args)}: stopped, the scheduler's --for time is up", file=sys.stderr, flush=True)
        return STOPPED
    for line in (done.stdout + done.stderr).splitlines():
        log.info("%s: %s", " ".join(args), line)
        if line.startswith("Error:"):
            print(f"digest {' '.join(args)}: {line}", file=sys.stderr, flush=True)
    if done.returncode:
        log.warning("digest %s exited %d", " ".join(args), done.returncode)
    return done.returncode


def ingest_job(config_path: str, db_url: str, source: str) -> int:
    """Ingest one source; tag and extract claims only when its run brought something new or changed."""
    from digest import store

    code = digest_command(config_path, db_url, ["ingest", "--source", source])
    if code == STOPPED:
        return code
    engine = store.open_engine(db_url)
    try:
        last = {r.source: r for r in store.last_runs(engine)}.get(source)
    finally:
        engine.dispose()
    if last is not None and last.new + last.updated > 0:
        digest_command(config_path, db_url, ["tag"])
        digest_command(config_path, db_url, ["claims"])
    return code


def command_job(config_path: str, db_url: str, args: list[str]) -> int:
    return digest_command(config_path, db_url, list(args))


def last_week(now: datetime, tz: ZoneInfo) -> str:
    """The ISO week before the one `now` falls in, on the calendar of `tz` ([site] timezone), e.g. 2026-W48."""
    year, week, _ = (now.astimezone(tz).date() - timedelta(days=7)).isocalendar()
    return f"{year}-W{week:02d}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def newsletter_job(config_path: str, db_url: str, clock: Callable[[], datetime] = utc_now) -> int:
    """Build the site (so every link in the issue resolves), then last week's issue, the week computed in
    [site] timezone when the job fires (not when it was scheduled). `--scheduled` sends it through the ledger
    when [smtp] and subscribers exist, unless [newsletter] send = false. No issue goes out after a failed build."""
    from digest.config import load_config

    week = last_week(clock(), timezone(load_config(config_path)))
    code = digest_command(config_path, db_url, ["build"])
    if code:
        log.warning("newsletter %s not sent: the site build failed (exit %d)", week, code)
        return code
    return digest_command(config_path, db_url, ["newsletter", "--week", week, "--scheduled"])
