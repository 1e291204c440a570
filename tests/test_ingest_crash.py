"""kill -9 in the middle of a real `python -m digest ingest`, then a rerun: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from werkzeug.wrappers import Response

from tests.conftest import ROOT, write_config

FEEDS, ENTRIES = 10, 40


def feed(n: int) -> bytes:
    items = "".join(
        f"<item><guid>f{n}-{i}</guid><title>Post {n}.{i}</title><link>https://b{n}.test/{i}</link>"
        f"<description>{'text ' * 200}</description><pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate></item>"
        for i in range(ENTRIES)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>b{n}</title>{items}</channel></rss>'.encode()


def slow_feed(request):
    time.sleep(0.15)
    n = int(request.path.rsplit("/", 1)[1].split(".")[0])
    return Response(feed(n), content_type="application/rss+xml", headers={"ETag": f'"{n}"'})


def start_ingest(cfg, db_url):
    env = {**os.environ, "DIGEST_DB": db_url, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(cfg), "ingest"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.parametrize("kill_after_requests", [1, 6])
def test_kill_9_mid_ingest_then_rerun(httpserver, tmp_path, db, kill_after_requests):
    httpserver.expect_request(__import__("re").compile(r"^/feed/\d+\.xml$")).respond_with_handler(slow_feed)
    sources = "".join(
        f"""
        [[source]]
        name = "blog-{n}"
        kind = "rss"
        url = "{httpserver.url_for(f"/feed/{n}.xml")}"
        allow_private = true
        """
        for n in range(FEEDS)
    )
    cfg = write_config(tmp_path, sources)
    proc = start_ingest(cfg, db.url)
    deadline = time.monotonic() + 60
    while len(httpserver.log) < kill_after_requests and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.16)  # the response is being written, parsed or committed now
    assert proc.poll() is None, proc.stdout.read().decode()
    proc.kill()  # SIGKILL: no cleanup, no atexit, no rollback
    proc.wait()
    assert proc.returncode == -9
    partial = db.one("SELECT count(*) FROM item")
    assert partial < FEEDS * ENTRIES

    rerun = start_ingest(cfg, db.url)
    out, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, out.decode()
    assert db.one("SELECT count(*) FROM item") == FEEDS * ENTRIES
    assert db.one("SELECT count(DISTINCT key) FROM item") == FEEDS * ENTRIES
    for n in range(FEEDS):  # every source's entries are all there, each with its validators
        assert db.one(f"SELECT count(*) FROM item WHERE source='blog-{n}'") == ENTRIES
        assert db.one(f"SELECT etag FROM fetchstate WHERE source='blog-{n}'") == f'"{n}"'
    if db.dialect == "sqlite":
        assert db.one("PRAGMA integrity_check") == "ok"


PAPERS, PAGE = 240, 40


@pytest.mark.parametrize("kill_after_requests", [2, 4])
def test_kill_9_mid_arxiv_pagination_then_rerun(httpserver, tmp_path, db, kill_after_requests):
    """Pages commit on a writer thread while the next one is fetched: a kill between the two loses nothing."""
    from tests.test_ingest_arxiv import feed, paper

    entries = [paper(f"2611.{i:05d}", day=1 + (PAPERS - i) // 10, summary="words " * 150) for i in range(PAPERS)]

    def api(request):
        time.sleep(0.15)
        start = int(request.args["start"])
        size = int(request.args["max_results"])
        body = feed(entries[start : start + size], total=PAPERS, start=start)
        return Response(body, content_type="application/atom+xml")

    httpserver.expect_request("/api/query").respond_with_handler(api)
    cfg = write_config(
        tmp_path,
        """
        [[source]]
        name = "arxiv-a"
        kind = "arxiv"
        allow_private = true
        query = "cat:cs.CL"
        """,
        fetch=f'arxiv_api = "{httpserver.url_for("/api/query")}?{{}}"\narxiv_page_size = {PAGE}\nretries = 0\n'
        "arxiv_max_results = 1000",
    )
    proc = start_ingest(cfg, db.url)
    deadline = time.monotonic() + 60
    while len(httpserver.log) < kill_after_requests and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)  # the next page is being served while the last one is committed
    assert proc.poll() is None, proc.stdout.read().decode()
    proc.kill()
    proc.wait()
    assert proc.returncode == -9
    assert 0 < db.one("SELECT count(*) FROM item") < PAPERS, "the kill should land mid-pagination"
    assert db.one("SELECT count(*) FROM ingestcursor") == 0  # an interrupted run never moves the cursor

    rerun = start_ingest(cfg, db.url)
    out, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, out.decode()
    assert db.one("SELECT count(*) FROM item") == PAPERS
    assert db.one("SELECT count(DISTINCT arxiv_id) FROM item") == PAPERS
    assert db.one("SELECT count(*) FROM ingestcursor") == 1
    if db.dialect == "sqlite":
        assert db.one("PRAGMA integrity_check") == "ok"
        assert db.one("SELECT count(*) FROM item_fts WHERE item_fts MATCH 'words'") == PAPERS
