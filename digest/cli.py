"""Thin CLI: parse options, open the store, call the pipeline, turn DigestError into one clean line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from digest.errors import DigestError

log = logging.getLogger("digest")


class DigestGroup(click.Group):
    """Every DigestError ends the command with 'Error: <one line>' and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DigestError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except BrokenPipeError:  # `digest export | head`: the reader has all it wanted; not an error
            _silence_stdout()
            ctx.exit(0)
        except Exception as exc:  # the environment failed us: one line, no traceback, nothing half-written
            line = environment_error(exc, ctx.obj)
            if line is None:
                raise
            click.echo(f"Error: {line}", err=True)
            ctx.exit(1)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise again on the closed pipe."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def environment_error(exc: BaseException, state: State | None) -> str | None:
    """One line for an error of the machine rather than of Digest (a corrupt or full database, a write
    that failed); None for anything else (a bug keeps its traceback). Every such failure happens inside a
    transaction or before an atomic rename, so what was stored or published before stays as it was."""
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import DBAPIError

        if isinstance(exc, DBAPIError):
            exc = exc.orig or exc
    where = f"database {state.where_db()}" if state else "database"
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "sqlite3" in sys.modules:
        import sqlite3

        # A corrupt file raises DatabaseError itself; a full disk, a lock or an I/O error OperationalError.
        # IntegrityError and the like are Digest's own bugs: they keep their traceback.
        if type(exc) is sqlite3.DatabaseError or isinstance(exc, sqlite3.OperationalError):
            return f"{where}: {reason}"
    if "psycopg" in sys.modules:
        import psycopg

        if isinstance(exc, psycopg.OperationalError):  # connection lost, disk full (53100), ...
            return f"{where}: {reason}"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else f"{exc.strerror}"
    return None


class State:
    """Config and engine, loaded only when a command asks for them."""

    def __init__(self, config_path: str | None, db_url: str | None):
        self.config_path = config_path
        self.db_url = db_url
        self._config = None
        self._engine = None

    @property
    def config(self):
        from digest.config import load_config, resolve_config_path

        if self._config is None:
            self._config = load_config(resolve_config_path(self.config_path))
        return self._config

    @property
    def engine(self):
        from digest import store

        if self._engine is None:
            url = self.db_url or self.config.default_db_url
            _refuse_empty_sqlite(url)
            self._engine = store.open_engine(url)
            store.init_db(self._engine)
        return self._engine

    def where_db(self) -> str:
        """The database, as an error names it (never with its password)."""
        if self._engine is not None:
            return self._engine.url.render_as_string(hide_password=True)
        if self.db_url:
            return self.db_url.split("@")[-1] if "@" in self.db_url else self.db_url
        return "(the workspace database)"


def _refuse_empty_sqlite(url: str) -> None:
    """A zero-byte file where a SQLite database should be is most likely a database that lost its contents
    (a failed copy, a full disk): refuse it, so it is not silently made into a new empty one; only
    `digest init` turns an empty file into a database."""
    if not url.startswith("sqlite:///"):
        return
    path = Path(url.removeprefix("sqlite:///").split("?")[0])
    ctx = click.get_current_context(silent=True)
    if path.is_file() and path.stat().st_size == 0 and not (ctx and ctx.command.name == "init"):
        raise DigestError(
            f"{path} is empty (0 bytes), not a Digest database: restore it from a backup, "
            "or run `digest init` to start an empty one there"
        )


pass_state = click.make_pass_decorator(State)


@click.group(cls=DigestGroup)
@click.option("--config", "config_path", envvar="DIGEST_CONFIG", help="Config TOML file (default: data/digest.toml).")
@click.option("--db", "db_url", envvar="DIGEST_DB", help="SQLAlchemy database URL (default: SQLite in the workspace).")
@click.option("-v", "--verbose", is_flag=True, help="Log every step.")
@click.version_option(package_name="digest")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, db_url: str | None, verbose: bool) -> None:
    """Digest: arXiv papers and ML blog posts in; findings site, weekly newsletter and tag search out."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if config_path and not ctx.resilient_parsing and not Path(config_path).exists():
        # checked here, not when a command first reads the config: with DIGEST_DB set, some never do
        raise DigestError(f"{config_path}: config file not found")
    ctx.obj = State(config_path, db_url)


@main.command()
@pass_state
def init(state: State) -> None:
    """Create the database and register the configured sources."""
    from digest import store

    store.sync_sources(state.engine, state.config.sources)
    click.echo(f"Database ready: {state.engine.url.render_as_string(hide_password=True)}")
    click.echo(f"{len(state.config.sources)} sources from {state.config.path}")


@main.command()
@click.option(
    "--workspace",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo writes (default: workspace/demo).",
)
@click.option("--week", help="Newsletter week (default: the latest week in the snapshot).")
@click.pass_context
def demo(ctx: click.Context, workspace: Path | None, week: str | None) -> None:
    """Serve the bundled snapshot on 127.0.0.1 and run the whole pipeline against it."""
    from digest import pipeline, store
    from digest.demo import SnapshotServer, demo_config
    from digest.embed import configured_embedder

    state: State = ctx.obj
    base_config = state.config
    workspace = (workspace or base_config.workspace / "demo").resolve()
    # The demo's own database lives in its workspace: an exported DIGEST_DB (your real database, or the demo's
    # from an earlier run) is not where snapshot data should go; only an explicit --db is.
    explicit = ctx.parent.get_parameter_source("db_url") == click.core.ParameterSource.COMMANDLINE
    with SnapshotServer(base_config) as server:
        config = demo_config(base_config, server.base, workspace)
        engine = store.open_engine(state.db_url if explicit and state.db_url else config.default_db_url)
        store.init_db(engine)
        _stage(f"ingest: the bundled snapshot, served on {server.base}")
        with _progress() as progress:
            reports = pipeline.ingest(engine, config, progress=progress)
    _print_reports(reports)
    broken = [r for r in reports if r.status == "broken"]
    if broken:
        raise DigestError(f"demo snapshot broken for: {', '.join(f'{r.source} ({r.error})' for r in broken)}")
    _stage(f"tag: loading {config.embed_model}, embedding every item, assigning topics")
    embedder = configured_embedder(config, base_config.workspace)
    with _progress() as progress:
        tagged = pipeline.tag_items(engine, config, embedder, progress=progress)
    _stage("claims: extracting headline numbers")
    n_claims = pipeline.extract_claims(engine)
    _stage("repro: running the hooks in repro/hooks.toml")
    verdicts = _run_shipped_hooks(engine, config)
    _stage("build: the site and its search index")
    out, _ = pipeline.build_site(engine, config)
    week = week or pipeline.latest_week(engine)
    _stage(f"newsletter: week {week}")
    eml = pipeline.build_newsletter(engine, config, week)
    counts = store.counts(engine)
    click.echo(f"Tagged {tagged['tagged']}/{tagged['items']} items, {n_claims} claims, {counts['findings']} findings.")
    click.echo(f"Reproduction hooks: {verdicts or 'none registered'}")
    click.echo(f"Site: {out / 'index.html'}")
    click.echo(f"Newsletter: {eml}")


def _stage(text: str) -> None:
    """One line as each stage of the demo starts, so a first run is never silent for minutes."""
    click.echo(f"== {text}")


def _run_shipped_hooks(engine, config) -> str:
    """Register the hooks shipped in repro/hooks.toml against this database and run them once."""
    from collections import Counter

    from digest.config import REPO_ROOT
    from digest.repro import run_hook, sync_hooks

    hooks_file = REPO_ROOT / "repro" / "hooks.toml"
    if not hooks_file.exists():
        return ""
    hooks, _problems = sync_hooks(engine, hooks_file)
    tally: Counter[str] = Counter()
    for hook in hooks:
        run = run_hook(engine, hook, config.workspace)
        if run.verdict == "skipped":  # hardware missing here: show what was measured where it exists
            run = _record_stored_results(engine, hook) or run
        tally[run.verdict] += 1
    return ", ".join(f"{n} {verdict}" for verdict, n in sorted(tally.items()))


def _record_stored_results(engine, hook):
    """Record the runs kept in repro/<hook>/results/*.json (measured on lent hardware); returns the last."""
    import json

    from digest.config import REPO_ROOT
    from digest.repro import record

    if not hook.script:
        return None
    last = None
    for path in sorted((REPO_ROOT / hook.script).parent.glob("results/*.json")):
        result = json.loads(path.read_text())
        note = f"measured on {result.get('device', 'other hardware')}, recorded from {path.name}"
        last = record(engine, hook, float(result["value"]), note, env=result)
    return last


def _print_reports(reports) -> None:
    for r in reports:
        line = (
            f"{r.source:28} {r.status:12} new={r.new} updated={r.updated} unchanged={r.unchanged} ({r.duration_s:.2f}s)"
        )
        click.echo(line + (f"  {r.error}" if r.error else ""), err=r.status == "broken")


class _progress:
    """A rich progress bar on a terminal; quiet log lines otherwise."""

    def __enter__(self):
        if not sys.stderr.isatty():
            return lambda label, done, total: log.info("%s %d/%d", label, done, total)
        from rich.progress import Progress

        self._bar = Progress(transient=True)
        self._bar.start()
        self._tasks: dict[str, int] = {}

        def update(label: str, done: int, total: int) -> None:
            key = label.split()[0]
            if key not in self._tasks:
                self._tasks[key] = self._bar.add_task(label, total=total)
            self._bar.update(self._tasks[key], completed=done, total=total, description=label)

        return update

    def __exit__(self, *exc) -> None:
        if getattr(self, "_bar", None):
            self._bar.stop()


@main.group("eval")
def eval_group() -> None:
    """Measure Digest's own accuracy on labelled sets."""


# Each wing's commands live in their own module; importing them registers them on `main`.
from digest import (  # noqa: E402, F401
    cli_claims,
    cli_eval,
    cli_ingest,
    cli_library,
    cli_publish,
    cli_search,
    cli_sources,
    cli_summaries,
    cli_topics,
)
