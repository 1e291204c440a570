"""CLI for the ingest wing: fetching sources and reporting their health."""

from __future__ import annotations

import click

from digest.cli import State, _print_reports, _progress, main, pass_state
from digest.errors import DigestError


@main.command()
@click.option("--source", "source_name", help="Ingest only this source (its name in the config).")
@pass_state
def ingest(state: State, source_name: str | None) -> None:
    """Fetch new papers and posts from every source (or one) into the database."""
    from digest import pipeline

    with _progress() as progress:
        reports = pipeline.ingest(state.engine, state.config, only=source_name, progress=progress)
    _print_reports(reports)
    broken = [r for r in reports if r.status == "broken"]
    if broken:
        names = ", ".join(f"{r.source} ({r.error})" for r in broken)
        raise DigestError(f"{len(broken)} source(s) broken: {names}")


@main.group("sources")
def sources_group() -> None:
    """Follow blogs and feeds: add, list, remove, import or export the [[source]] entries of the config."""


@sources_group.command("enable")
@click.argument("name")
@pass_state
def sources_enable(state: State, name: str) -> None:
    """Fetch a source again after a 410 Gone disabled it (fix its url in the config first)."""
    from digest import store

    if name not in {s.name for s in state.config.sources}:
        raise DigestError(f"source {name!r}: not in the config (see its [[source]] blocks)")
    store.sync_sources(state.engine, state.config.sources)
    reason = store.enable_source(state.engine, name)
    if reason:
        click.echo(f"{name}: enabled again (it was disabled: {reason})")
    else:
        click.echo(f"{name}: was not disabled")


ATTENTION = ("broken", "disabled", "incomplete", "deferred", "warning")  # shown first, in this order


@main.command()
@pass_state
def status(state: State) -> None:
    """Show the last ingest of every source, broken ones first; exit 1 if any is broken or disabled."""
    from digest import store

    runs = store.last_runs(state.engine)
    if not runs:
        click.echo("No ingest has run yet.")
        return
    runs.sort(key=lambda r: (ATTENTION.index(r.status) if r.status in ATTENTION else len(ATTENTION), r.source))
    click.echo(
        f"{'STATUS':12} {'SOURCE':28} {'LAST RUN (UTC)':16} {'NEW':>5} {'UPDATED':>7} {'SAME':>6} {'TIME':>7}  ERROR"
    )
    for r in runs:
        line = (
            f"{r.status:12} {r.source:28} {r.started_at:%Y-%m-%d %H:%M} "
            f"{r.new:>5} {r.updated:>7} {r.unchanged:>6} {r.duration_s:>6.2f}s"
        )
        click.echo(line + (f"  {r.error}" if r.error else ""))
    bad = [f"{r.source} ({r.status})" for r in runs if r.status in ("broken", "disabled")]
    if bad:
        raise DigestError(f"{len(bad)} source(s) broken or disabled: {', '.join(bad)}")


@main.command()
@click.option("--list", "list_jobs", is_flag=True, help="Print the jobs and their next run times, then exit.")
@click.option("--once", is_flag=True, help="Run every job once now, in order, then exit.")
@click.option("--for", "seconds", type=float, help="Stop the scheduler after this many seconds (default: never).")
@pass_state
def schedule(state: State, list_jobs: bool, once: bool, seconds: float | None) -> None:
    """Run ingest, tag, claims, build and the newsletter on their schedules, in the foreground."""
    import math
    from datetime import datetime

    from digest import schedule as sched

    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise DigestError(f"--for {seconds}: must be a positive number of seconds")
    config = state.config
    config_path = str(config.path.resolve())
    db_url = state.db_url or config.default_db_url
    specs = sched.job_specs(config, config_path, db_url)
    if list_jobs:
        now = datetime.now(sched.timezone(config))
        for spec, when in sched.next_runs(specs, now):
            click.echo(f"{spec.id:32} next {when:%Y-%m-%d %H:%M %Z}  {spec.describe}")
        return
    if once:
        for spec in specs:
            code = spec.func(*spec.args)
            click.echo(f"{spec.id:32} exit {code}")
        return
    state.engine  # noqa: B018 - creates the database (and its folder) or refuses a broken one, before the job store
    click.echo(f"Scheduler running {len(specs)} jobs (Ctrl-C to stop); job store in {db_url.split('?')[0]}")
    try:
        sched.run(config, config_path, db_url, seconds=seconds)
    except KeyboardInterrupt:
        click.echo("Scheduler stopped.")
