"""The ingest wing against a real HTTP server on 127.0.0.1: what each HTTP answer does to the database."""

from __future__ import annotations

import re

import pytest

from digest import store
from digest.cli import main
from digest.config import load_config
from digest.errors import DigestError
from digest.ingest import ingest
from digest.lock import run_lock
from tests.conftest import FIXTURES, write_config

FEED = (FIXTURES / "feed.xml").read_bytes()


def rss_source(name: str, url: str, extra: str = "") -> str:
    return f"""
        [[source]]
        name = "{name}"
        kind = "rss"
        url = "{url}"
        allow_private = true
        {extra}
        """


def run_ingest(cfg, db):
    config = load_config(cfg)
    engine = store.open_engine(db.url)
    store.init_db(engine)
    try:
        return {r.source: r for r in ingest(engine, config)}
    finally:
        engine.dispose()


def hits(httpserver, path):
    return len([r for r, _ in httpserver.log if r.path == path])


def other_host(url: str) -> str:
    return url.replace("localhost", "127.0.0.1") if "localhost" in url else url.replace("127.0.0.1", "localhost")


def test_304_means_no_parse_and_no_writes(httpserver, tmp_path, db):
    httpserver.expect_oneshot_request("/feed.xml").respond_with_data(FEED, headers={"ETag": '"v1"'})
    httpserver.expect_request("/feed.xml", headers={"If-None-Match": '"v1"'}).respond_with_data("", status=304)
    cfg = write_config(tmp_path, rss_source("blog", httpserver.url_for("/feed.xml")))
    assert run_ingest(cfg, db)["blog"].new == 2
    items_before = db.rows("SELECT * FROM item ORDER BY id")
    state_before = db.rows("SELECT * FROM fetchstate")
    report = run_ingest(cfg, db)["blog"]
    assert report.status == "not-modified" and report.new == report.updated == 0
    assert db.rows("SELECT * FROM item ORDER BY id") == items_before
    assert db.rows("SELECT * FROM fetchstate") == state_before


def test_validators_not_saved_when_the_entries_were_not(httpserver, tmp_path, db):
    httpserver.expect_oneshot_request("/feed.xml").respond_with_data(FEED, headers={"ETag": '"v1"'})
    httpserver.expect_request("/feed.xml").respond_with_data("<html>oops</html>", headers={"ETag": '"v2"'})
    cfg = write_config(tmp_path, rss_source("blog", httpserver.url_for("/feed.xml")))
    run_ingest(cfg, db)
    assert run_ingest(cfg, db)["blog"].status == "broken"
    # Had the new ETag been kept, the next run would get a 304 and never see the entries it missed.
    assert db.one("SELECT etag FROM fetchstate WHERE source='blog'") == '"v1"'


def test_301_updates_the_stored_url_302_does_not(httpserver, tmp_path, db):
    httpserver.expect_request("/moved").respond_with_data("", status=301, headers={"Location": "/feed.xml"})
    httpserver.expect_request("/borrowed").respond_with_data("", status=302, headers={"Location": "/feed.xml"})
    httpserver.expect_request("/feed.xml").respond_with_data(FEED)
    cfg = write_config(
        tmp_path,
        rss_source("moved", httpserver.url_for("/moved")) + rss_source("borrowed", httpserver.url_for("/borrowed")),
    )
    run_ingest(cfg, db)
    assert db.one("SELECT url FROM source WHERE name='moved'") == httpserver.url_for("/feed.xml")
    assert db.one("SELECT url FROM source WHERE name='borrowed'") == httpserver.url_for("/borrowed")
    run_ingest(cfg, db)
    assert hits(httpserver, "/moved") == 1  # the second run went straight to the new address
    assert hits(httpserver, "/borrowed") == 2


def test_410_disables_the_source_and_reports_it(httpserver, tmp_path, db, runner):
    httpserver.expect_request("/gone.xml").respond_with_data("", status=410)
    httpserver.expect_request("/feed.xml").respond_with_data(FEED)
    cfg = write_config(
        tmp_path,
        rss_source("gone", httpserver.url_for("/gone.xml")) + rss_source("ok", httpserver.url_for("/feed.xml")),
    )
    reports = run_ingest(cfg, db)
    assert reports["gone"].status == "disabled" and "410" in reports["gone"].error
    assert reports["ok"].new == 2
    assert db.one("SELECT enabled FROM source WHERE name='gone'") in (0, False)
    assert run_ingest(cfg, db)["gone"].status == "disabled"
    assert hits(httpserver, "/gone.xml") == 1  # a disabled source is not fetched again
    status = runner.invoke(main, ["--config", str(cfg), "status"])
    assert status.exit_code == 1
    assert status.output.splitlines()[1].startswith("disabled") and "410" in status.output


def test_429_defers_that_host_while_others_carry_on(httpserver, tmp_path, db):
    httpserver.expect_request("/busy.xml").respond_with_data("", status=429, headers={"Retry-After": "3600"})
    httpserver.expect_request("/busy2.xml").respond_with_data(FEED)
    httpserver.expect_request("/feed.xml").respond_with_data(FEED)
    cfg = write_config(
        tmp_path,
        rss_source("busy", httpserver.url_for("/busy.xml"))
        + rss_source("same-host", httpserver.url_for("/busy2.xml"))
        + rss_source("elsewhere", other_host(httpserver.url_for("/feed.xml"))),
    )
    reports = run_ingest(cfg, db)
    assert reports["busy"].status == "deferred" and "3600" in reports["busy"].error
    assert reports["same-host"].status == "deferred"  # same host: not asked during its Retry-After
    assert hits(httpserver, "/busy2.xml") == 0
    assert reports["elsewhere"].status == "ok" and reports["elsewhere"].new == 2


def test_short_retry_after_moves_the_source_to_the_end_of_the_run(httpserver, tmp_path, db):
    httpserver.expect_oneshot_request("/busy.xml").respond_with_data("", status=503, headers={"Retry-After": "1"})
    httpserver.expect_request("/busy.xml").respond_with_data(FEED)
    httpserver.expect_request("/feed.xml").respond_with_data(FEED.replace(b"post-", b"other-"))
    cfg = write_config(
        tmp_path,
        rss_source("busy", httpserver.url_for("/busy.xml"))
        + rss_source("elsewhere", other_host(httpserver.url_for("/feed.xml"))),
    )
    reports = run_ingest(cfg, db)
    assert list(reports) == ["elsewhere", "busy"]
    assert reports["busy"].status == "ok" and reports["busy"].new == 2


def test_bozo_feed_keeps_good_entries_and_reports(httpserver, tmp_path, db):
    broken = FEED.replace(b"</channel>\n</rss>", b"<item><title>cut off")
    httpserver.expect_request("/feed.xml").respond_with_data(broken)
    cfg = write_config(tmp_path, rss_source("blog", httpserver.url_for("/feed.xml")))
    report = run_ingest(cfg, db)["blog"]
    assert report.status == "warning" and "malformed feed" in report.error
    assert db.one("SELECT count(*) FROM item WHERE key IN ('blog|guid:post-1','blog|guid:post-2')") == 2


def test_wrongly_declared_charset_loses_to_valid_utf8(httpserver, tmp_path, db):
    body = FEED.replace(b'encoding="utf-8"', b'encoding="iso-8859-1"')
    httpserver.expect_request("/feed.xml").respond_with_data(body, content_type="text/xml; charset=iso-8859-1")
    cfg = write_config(tmp_path, rss_source("blog", httpserver.url_for("/feed.xml")))
    report = run_ingest(cfg, db)["blog"]
    assert report.status == "ok", report.error
    assert db.one("SELECT title FROM item WHERE key='blog|guid:post-1'").endswith("~15× faster in production")


def test_missing_titles_and_dates_get_fallbacks(httpserver, tmp_path, db):
    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://b.test/</link>
    <item><link>https://b.test/untitled</link><description>First words of an untitled post.</description></item>
    <item><title></title><description></description><link>https://b.test/bare</link></item>
    </channel></rss>"""
    httpserver.expect_request("/feed.xml").respond_with_data(body)
    cfg = write_config(tmp_path, rss_source("blog", httpserver.url_for("/feed.xml")))
    assert run_ingest(cfg, db)["blog"].new == 2
    titles = {r[0]: r[1] for r in db.rows("SELECT url, title FROM item")}
    assert titles["https://b.test/untitled"] == "First words of an untitled post."
    assert titles["https://b.test/bare"] == "https://b.test/bare"
    assert db.one("SELECT count(*) FROM item WHERE published IS NULL") == 0


def test_entries_per_feed_and_field_sizes_are_capped(httpserver, tmp_path, db):
    items = "".join(
        f"<item><guid>g{i}</guid><title>{'T' * 5000}</title><description>{'w ' * 30000}</description>"
        f"<link>javascript:alert({i})</link></item>"
        for i in range(30)
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'
    httpserver.expect_request("/feed.xml").respond_with_data(body)
    cfg = write_config(tmp_path, rss_source("blog", httpserver.url_for("/feed.xml")), fetch="max_entries = 10")
    assert run_ingest(cfg, db)["blog"].new == 10
    assert db.one("SELECT max(length(title)) FROM item") == 1000
    assert db.one("SELECT max(length(summary)) FROM item") <= 20_000
    assert db.one("SELECT count(*) FROM item WHERE url LIKE '%javascript%'") == 0


def test_a_second_ingest_waits_for_no_one(httpserver, tmp_path, db, runner):
    httpserver.expect_request("/feed.xml").respond_with_data(FEED)
    cfg = write_config(tmp_path, rss_source("blog", httpserver.url_for("/feed.xml")))
    config = load_config(cfg)
    with run_lock(db.engine, config.workspace):
        result = runner.invoke(main, ["--config", str(cfg), "ingest"])
        assert result.exit_code == 1
        assert "another ingest is already running" in result.output
        with pytest.raises(DigestError, match="another ingest"):
            run_ingest(cfg, db)
    assert hits(httpserver, "/feed.xml") == 0
    assert runner.invoke(main, ["--config", str(cfg), "ingest"]).exit_code == 0  # released: runs again


def test_status_shows_errors_and_durations(httpserver, tmp_path, db, runner, fetch_clock):
    httpserver.expect_request("/feed.xml").respond_with_data(FEED)
    cfg = write_config(
        tmp_path, rss_source("good", httpserver.url_for("/feed.xml")) + rss_source("down", "http://127.0.0.1:9/x")
    )
    runner.invoke(main, ["--config", str(cfg), "ingest"])  # the down host's back-off passes on the fetcher's clock
    lines = runner.invoke(main, ["--config", str(cfg), "status"]).output.splitlines()
    assert lines[0].split() == ["STATUS", "SOURCE", "LAST", "RUN", "(UTC)", "NEW", "UPDATED", "SAME", "TIME", "ERROR"]
    assert lines[1].startswith("broken") and "cannot connect" in lines[1]
    good = next(line for line in lines if " good " in line)
    assert good.startswith("ok") and re.search(r" 2 +0 +0 +\d+\.\d\ds$", good)


def test_retry_after_is_honoured_by_the_next_run_too(httpserver, tmp_path, db):
    httpserver.expect_request("/busy.xml").respond_with_data("", status=429, headers={"Retry-After": "3600"})
    cfg = write_config(tmp_path, rss_source("busy", httpserver.url_for("/busy.xml")))
    assert run_ingest(cfg, db)["busy"].status == "deferred"
    report = run_ingest(cfg, db)["busy"]  # an hour has not passed: the host is not asked again
    assert report.status == "deferred" and "asked us to retry in" in report.error
    assert hits(httpserver, "/busy.xml") == 1
    assert db.one("SELECT count(*) FROM hosthold") == 1


def test_editing_the_config_url_wins_over_an_earlier_301(httpserver, tmp_path, db):
    httpserver.expect_request("/old.xml").respond_with_data("", status=301, headers={"Location": "/moved.xml"})
    httpserver.expect_request("/moved.xml").respond_with_data(FEED)
    httpserver.expect_request("/edited.xml").respond_with_data(FEED)
    cfg = write_config(tmp_path, rss_source("blog", httpserver.url_for("/old.xml")))
    run_ingest(cfg, db)
    run_ingest(cfg, db)
    assert (hits(httpserver, "/old.xml"), hits(httpserver, "/moved.xml")) == (1, 2)  # the 301 is remembered
    cfg.write_text(cfg.read_text().replace("/old.xml", "/edited.xml"))  # the user points it elsewhere
    run_ingest(cfg, db)
    assert hits(httpserver, "/edited.xml") == 1 and hits(httpserver, "/moved.xml") == 2
    assert db.one("SELECT url FROM source WHERE name='blog'") == httpserver.url_for("/edited.xml")
    assert db.one("SELECT count(*) FROM sourcemove") == 0  # the edit dropped the stale move
    cfg.write_text(cfg.read_text().replace("/edited.xml", "/old.xml"))  # and back: the 301 is found again
    run_ingest(cfg, db)
    assert (hits(httpserver, "/old.xml"), hits(httpserver, "/moved.xml")) == (2, 3)


def test_sources_enable_fetches_a_gone_source_again(httpserver, tmp_path, db, runner):
    httpserver.expect_oneshot_request("/gone.xml").respond_with_data("", status=410)
    httpserver.expect_request("/gone.xml").respond_with_data(FEED)
    cfg = write_config(tmp_path, rss_source("gone", httpserver.url_for("/gone.xml")))
    assert run_ingest(cfg, db)["gone"].status == "disabled"
    assert "digest sources enable gone" in db.one("SELECT disabled_reason FROM source WHERE name='gone'")
    assert run_ingest(cfg, db)["gone"].status == "disabled" and hits(httpserver, "/gone.xml") == 1
    enabled = runner.invoke(main, ["--config", str(cfg), "sources", "enable", "gone"])
    assert enabled.exit_code == 0 and "enabled again" in enabled.output and "410" in enabled.output
    report = run_ingest(cfg, db)["gone"]
    assert report.status == "ok" and report.new == 2
    assert db.one("SELECT enabled FROM source WHERE name='gone'") in (1, True)
    again = runner.invoke(main, ["--config", str(cfg), "sources", "enable", "gone"])
    assert again.exit_code == 0 and "was not disabled" in again.output
    unknown = runner.invoke(main, ["--config", str(cfg), "sources", "enable", "nope"])
    assert unknown.exit_code == 1 and unknown.output.startswith("Error: source 'nope'")


def guid_one_feed(title: str) -> bytes:
    return f"""<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title><link>https://b.test/</link>
    <item><guid isPermaLink="false">1</guid><title>{title}: our first post</title>
    <link>https://{title.lower()}.test/1</link><description>What {title} measured.</description></item>
    </channel></rss>""".encode()


def test_two_feeds_using_the_same_guid_keep_two_items(httpserver, tmp_path, db):
    """Keys are per source (as miniflux scopes them per feed): guid `1` of one blog is not guid `1` of another,
    and neither flips to the other's content or reports `updated` on every run."""
    for name in ("Alpha", "Beta"):
        httpserver.expect_request(f"/{name}.xml").respond_with_data(guid_one_feed(name))
    sources = rss_source("alpha", httpserver.url_for("/Alpha.xml")) + rss_source(
        "beta", httpserver.url_for("/Beta.xml")
    )
    cfg = write_config(tmp_path, sources)
    first = run_ingest(cfg, db)
    assert (first["alpha"].new, first["beta"].new) == (1, 1)
    rows = db.rows("SELECT key, source, title FROM item ORDER BY key")
    assert rows == [("alpha|guid:1", "alpha", "Alpha: our first post"), ("beta|guid:1", "beta", "Beta: our first post")]
    again = run_ingest(cfg, db)
    assert [(r.new, r.updated, r.unchanged) for r in again.values()] == [(0, 0, 1), (0, 0, 1)]
    assert db.rows("SELECT key, source, title FROM item ORDER BY key") == rows
    engine = store.open_engine(db.url)
    assert store.find_item(engine, "beta|guid:1").title == "Beta: our first post"
    assert store.find_item(engine, "guid:1").source == "alpha"  # a key as written before keys were per source
    engine.dispose()
