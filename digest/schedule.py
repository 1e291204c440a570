"""`digest schedule`: APScheduler in the foreground running the same commands as cron, one at a time."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.config import Config
from digest.errors import ConfigError

log = logging.getLogger("digest.schedule")


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
    """Start a BlockingScheduler on a job store in the same database; stop after `seconds` if given."""
    import threading

    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=db_url)},
        executors={"default": ThreadPoolExecutor(1)},  # one job at a time: ingests never race each other
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        timezone=timezone(config),
    )
    now = datetime.now(timezone(config))
    for spec in job_specs(config, config_path, db_url):
        first = now if spec.id.startswith("ingest:") else None  # ingest at start, then on the interval
        scheduler.add_job(
            spec.func,
            spec.trigger,
            args=list(spec.args),
            id=spec.id,
            name=spec.describe,
            replace_existing=True,
            next_run_time=first or spec.trigger.get_next_fire_time(None, now),
        )
    if seconds is not None:
        timer = threading.Timer(seconds, lambda: scheduler.shutdown(wait=True))
        timer.daemon = True
        timer.start()
    log.info("scheduler started with %d jobs", len(scheduler.get_jobs()))
    scheduler.start()


def digest_command(config_path: str, db_url: str, args: list[str]) -> int:
    """Run one `digest` command in a child process, as cron would: a crash or a model load never stays behind."""
    argv = [sys.executable, "-m", "digest", "--config", config_path, "--db", db_url, *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
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
