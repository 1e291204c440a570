"""CLI for the publish wing: the static site, the newsletter and its subscribers."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli import State, _print_reports, _progress, main, pass_state  # noqa: F401
from digest.errors import DigestError


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Output folder for the site.")
@click.option("--no-search", is_flag=True, help="Skip the Pagefind search index.")
@pass_state
def build(state: State, out_dir: Path | None, no_search: bool) -> None:
    """Render the static findings site, then index it for client-side search."""
    import time

    from digest import pipeline

    started = time.perf_counter()
    out, written = pipeline.build_site(state.engine, state.config, out_dir, search=False)
    click.echo(f"Site: {out / 'index.html'} ({written} files written) in {time.perf_counter() - started:.2f} s")
    if not no_search and (written or not (out / "pagefind" / "pagefind.js").exists()):
        seconds = pipeline.build_search(out)
        click.echo(f"Search index: {out / 'pagefind'} ({seconds:.2f} s)")


@main.command()
@click.option("--week", help="ISO week, e.g. 2026-W48 (with --scheduled: default last week in [site] timezone).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Folder for the .eml file(s).")
@click.option("--send", is_flag=True, help="Send to every subscriber over SMTP (skips those already sent to).")
@click.option("--dry-run", is_flag=True, help="With --send: write one .eml per subscriber instead of sending.")
@click.option(
    "--scheduled",
    is_flag=True,
    help="What cron and `digest schedule` run: write the issue, and send it when [smtp] and subscribers exist "
    "(unless [newsletter] send = false).",
)
@pass_state
def newsletter(
    state: State, week: str | None, out_dir: Path | None, send: bool, dry_run: bool, scheduled: bool
) -> None:
    """Write one week's newsletter as an .eml file, or send it to the subscribers."""
    from digest import pipeline

    if dry_run and not send:
        raise DigestError("--dry-run only goes with --send")
    if scheduled and send:
        raise DigestError("--scheduled decides by itself whether to send: leave out --send")
    if week is None:
        if not scheduled:
            raise DigestError("--week is required (e.g. --week 2026-W48), unless --scheduled")
        from digest.schedule import last_week, timezone, utc_now

        week = last_week(utc_now(), timezone(state.config))
    if scheduled:
        path = pipeline.build_newsletter(state.engine, state.config, week, out_dir)
        click.echo(f"Newsletter: {path}")
        reason = _not_sending(state, week)
        if reason:
            click.echo(f"Not sent: {reason}")
            return
        send = True
    if not send:
        path = pipeline.build_newsletter(state.engine, state.config, week, out_dir)
        click.echo(f"Newsletter: {path}")
        return
    folder = (out_dir or state.config.newsletter.out_dir) if dry_run else None
    report = pipeline.send_newsletter(state.engine, state.config, week, dry_run_dir=folder)
    if dry_run:
        click.echo(f"Dry run: {len(report.files)} .eml files in {report.files[0].parent}")
        return
    again = f" ({len(report.resent)} again under their first Message-ID)" if report.resent else ""
    click.echo(f"Sent {len(report.sent)}, already sent {report.already}, of {report.total} subscribers{again}")
    if report.refused:
        raise DigestError(f"the SMTP server refused {len(report.refused)} recipient(s): {', '.join(report.refused)}")


def _not_sending(state: State, week: str) -> str:
    """Why a scheduled issue is not sent ("" when it is): a quiet week is no error for cron."""
    from datetime import datetime, time, timedelta

    from digest import store
    from digest.pipeline import parse_week

    start, end = parse_week(week)
    since, until = datetime.combine(start, time()), datetime.combine(end + timedelta(days=1), time())
    if not store.finding_ids_between(state.engine, since, until):
        return f"no findings in {week}"
    if not state.config.newsletter.send:
        return "[newsletter] send = false"
    if not state.config.smtp.configured:
        return "no [smtp] in the config"
    if not store.subscribers(state.engine):
        return "no subscribers"
    return ""


@main.group()
def subscribers() -> None:
    """Manage newsletter subscribers (stored in the database)."""


@subscribers.command("add")
@click.argument("emails", nargs=-1, required=True)
@pass_state
def subscribers_add(state: State, emails: tuple[str, ...]) -> None:
    """Subscribe one or more addresses."""
    from digest import deliver, store

    checked = [deliver.check_address(e) for e in emails]
    for address in checked:
        added = store.add_subscriber(state.engine, address, deliver.new_token())
        click.echo(f"{'added' if added else 'already subscribed'}: {address}")


@subscribers.command("remove")
@click.argument("emails", nargs=-1, required=True)
@pass_state
def subscribers_remove(state: State, emails: tuple[str, ...]) -> None:
    """Unsubscribe one or more addresses."""
    from digest import store

    for address in emails:
        address = address.strip()
        if not store.remove_subscriber(state.engine, address):
            raise DigestError(f"{address!r}: not subscribed")
        click.echo(f"removed: {address}")


@subscribers.command("list")
@pass_state
def subscribers_list(state: State) -> None:
    """Print every subscriber, one address a line."""
    from digest import store

    rows = store.subscribers(state.engine)
    for row in rows:
        click.echo(row.email)
    if not rows:
        click.echo("No subscribers.", err=True)
