"""Shared fixtures: a temporary workspace, a config pointing at a loopback server, the CLI runner."""

from __future__ import annotations

import os
import shutil
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import ClassVar

import pytest
from click.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Variables that steer the test run itself; every other DIGEST_* variable is cleared for each test.
TEST_CONTROL = frozenset({"DIGEST_TEST_PG", "DIGEST_SLOW", "DIGEST_SCREENSHOTS", "DIGEST_FEEDPARSER_CORPUS"})


def steers_the_run(name: str) -> bool:
    """True for the variables a test run is configured with (kept), not ones a user exported for Digest."""
    return name in TEST_CONTROL or name.startswith("DIGEST_REQUIRE_")


def pytest_collection_modifyitems(config, items):
    """`slow` tests (real model, ONNX export, distillation, the whole demo) run only when asked for.

    `DIGEST_SLOW=1` (what .ci/run sets) or a `-m` expression naming them turns them on.
    """
    if os.environ.get("DIGEST_SLOW") == "1" or "slow" in (config.getoption("markexpr", "") or ""):
        return
    skip = pytest.mark.skip(reason="slow test: run with DIGEST_SLOW=1 (or pytest -m slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def clean_digest_environment(monkeypatch):
    """No DIGEST_DB, DIGEST_CONFIG, DIGEST_SMTP_* or other DIGEST_* from the caller's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("DIGEST_") and not steers_the_run(name):
            monkeypatch.delenv(name)


TOPICS = """
[[topic]]
slug = "speculative-decoding"
name = "Speculative decoding"
description = "Drafting tokens with a small model and verifying them with the target model."
keywords = ["speculative decoding", "draft model", "drafter"]

[[topic]]
slug = "kv-cache"
name = "KV cache"
description = "Compressing, sharing and managing the key-value cache of attention."
keywords = ["kv cache", "key-value cache"]

[[topic]]
slug = "interpretability"
name = "Interpretability"
description = "Understanding the internal representations and circuits of neural networks."
keywords = ["interpretability", "sparse autoencoder", "circuit"]
"""


def write_config(tmp: Path, sources: str, extra: str = "", fetch: str = "") -> Path:
    """A config in tmp with the fake embedder, its own workspace and the given [[source]] blocks."""
    (tmp / "topics.toml").write_text(TOPICS)
    cfg = tmp / "digest.toml"
    cfg.write_text(
        textwrap.dedent(
            f"""
            topics_file = "topics.toml"
            workspace = "ws"
            [site]
            title = "Test Digest"
            base_url = "https://digest.test/"
            [fetch]
            min_interval_s = 0.0
            connect_timeout_s = 2.0
            timeout_s = 3.0
            arxiv_delay_s = 0.0
            {fetch}
            [embed]
            model = "fake-hash-64"
            {extra}
            """
        )
        + textwrap.dedent(sources)
    )
    return cfg


class DB:
    """A test database by URL, read through SQLAlchemy so the same test runs on SQLite and PostgreSQL."""

    def __init__(self, url: str):
        from sqlalchemy import create_engine

        self.url = url
        self.engine = create_engine(url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def rows(self, query: str, **params) -> list[tuple]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query), params)]

    def one(self, query: str, **params):
        rows = self.rows(query, **params)
        return rows[0][0] if rows else None


@pytest.fixture
def db(tmp_path, monkeypatch) -> DB:
    """A fresh, empty database for one test; DIGEST_DB points at it so the CLI uses it.

    SQLite file by default. When DIGEST_TEST_PG is set (a PostgreSQL server URL), a fresh
    PostgreSQL database is created per test instead.
    """
    server = os.environ.get("DIGEST_TEST_PG")
    if not server:
        url = f"sqlite:///{tmp_path / 'test.db'}"
        monkeypatch.setenv("DIGEST_DB", url)
        database = DB(url)
        yield database
        database.engine.dispose()
        return
    yield from _pg_database(server, monkeypatch)


def _pg_database(server: str, monkeypatch):
    """CREATE DATABASE with a unique name on the DIGEST_TEST_PG server; DROP it after the test."""
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"digest_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("DIGEST_DB", url)
    database = DB(url)
    try:
        yield database
    finally:
        database.engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


class QuietFiles(SimpleHTTPRequestHandler):
    """Static files for the browser tests, with the types Pagefind needs and no request log."""

    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".wasm": "application/wasm",
    }

    def log_message(self, *args):
        pass


@contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """A built site on 127.0.0.1 for the length of the block; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietFiles, directory=str(folder)))
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


NO_CHROMIUM = "browser tests skipped: no `chromium` on PATH (apt install chromium; .ci/run installs it)"


@pytest.fixture
def browser():
    """Debian's headless Chromium through Playwright (it cannot download its own browser here).

    Without a `chromium` the browser tests are skipped with one line, unless DIGEST_REQUIRE_BROWSER=1
    (.ci/run): there, and wherever chromium is installed, a browser that cannot start is a failure.
    """
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("DIGEST_REQUIRE_BROWSER") == "1":
            pytest.fail("DIGEST_REQUIRE_BROWSER=1 but no `chromium` on PATH")
        pytest.skip(NO_CHROMIUM)
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=args)
        yield b
        b.close()


def open_tag_then_item(page) -> None:
    """From a site's home page in Chromium: follow the first tag, then that tag's first finding."""
    page.locator("section.taglist a.tag").first.click()
    page.wait_for_load_state()
    assert "/tags/" in page.url and page.locator("article.finding").count() > 0
    page.locator("article.finding h3 a").first.click()
    page.wait_for_load_state()
    assert "/items/" in page.url and page.locator("h1").count() == 1


class SkippingClock:
    """Stands in for the `time` module inside digest.fetch: sleeping moves the clock on at once, never waits.

    `monotonic()` is the real clock plus every second slept so far, so the gaps the client keeps between
    requests can be read off it exactly, on any machine load, without the test spending them.
    """

    def __init__(self):
        self.slept = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.slept

    def sleep(self, seconds: float) -> None:
        self.slept += max(0.0, seconds)

    def __getattr__(self, name):
        return getattr(time, name)


@pytest.fixture
def fetch_clock(monkeypatch) -> SkippingClock:
    """The fetcher's own clock (pacing, back-off), replaced by a SkippingClock for the test."""
    import digest.fetch

    clock = SkippingClock()
    monkeypatch.setattr(digest.fetch, "time", clock)
    return clock


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def fixture_bytes():
    return lambda name: (FIXTURES / name).read_bytes()


HEAVY_MODULES = ("torch", "sentence_transformers", "sklearn")


def heavy_imports_of(cfg: Path, *commands: list[str]):
    """Run CLI commands in one fresh process; returns (the process, the heavy modules it imported). Each command
    must succeed: a fast path that silently fell back to loading a model would show up here."""
    import json
    import subprocess
    import sys

    code = (
        "import sys, json; from digest.cli import main\n"
        "for args in json.loads(sys.argv[2]):\n"
        "    try: main(['--config', sys.argv[1], *args])\n"
        "    except SystemExit as e: assert not e.code, e.code\n"
        f"print('HEAVY', json.dumps(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)), file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(cfg), json.dumps([list(c) for c in commands])],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    heavy = json.loads(proc.stderr.rsplit("HEAVY ", 1)[1])
    return proc, heavy
