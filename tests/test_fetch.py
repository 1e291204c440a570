"""Fetching against a real HTTP server on 127.0.0.1 (pytest-httpserver)."""

import gzip

import pytest
from werkzeug.wrappers import Response

from digest.config import FetchConfig, SourceConfig
from digest.errors import FetchError
from digest.fetch import Fetcher, Validators, check_url

LOCAL = SourceConfig(name="local", kind="rss", url="http://127.0.0.1/", allow_private=True, min_interval_s=0.0)


@pytest.fixture
def fetcher():
    with Fetcher(FetchConfig(timeout_s=1.0, connect_timeout_s=1.0, max_bytes=10_000)) as f:
        yield f


def test_conditional_get_sends_validators_byte_for_byte(httpserver, fetcher):
    etag, modified = 'W/"abc-123"', "Mon, 23 Nov 2026 10:00:00 GMT"
    httpserver.expect_request(
        "/feed", headers={"If-None-Match": etag, "If-Modified-Since": modified}
    ).respond_with_data("", status=304)
    resp = fetcher.get(LOCAL, httpserver.url_for("/feed"), Validators(etag, modified))
    assert resp.not_modified and resp.body == b""


def test_validators_come_back_from_a_200(httpserver, fetcher):
    httpserver.expect_request("/feed").respond_with_data("<rss/>", headers={"ETag": '"v1"', "Last-Modified": "x"})
    resp = fetcher.get(LOCAL, httpserver.url_for("/feed"))
    assert resp.status == 200 and resp.validators == Validators('"v1"', "x")


def test_permanent_redirect_reports_new_url_temporary_does_not(httpserver, fetcher):
    httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/new"})
    httpserver.expect_request("/tmp").respond_with_data("", status=302, headers={"Location": "/new"})
    httpserver.expect_request("/new").respond_with_data("ok")
    assert fetcher.get(LOCAL, httpserver.url_for("/old")).permanent_url == httpserver.url_for("/new")
    assert fetcher.get(LOCAL, httpserver.url_for("/tmp")).permanent_url == ""


def test_redirect_loop_is_a_clean_error(httpserver, fetcher):
    httpserver.expect_request("/loop").respond_with_data("", status=302, headers={"Location": "/loop"})
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetcher.get(LOCAL, httpserver.url_for("/loop"))


def test_size_cap_counts_decompressed_bytes(httpserver, fetcher):
    bomb = gzip.compress(b"a" * 200_000)
    assert len(bomb) < 10_000
    httpserver.expect_request("/bomb").respond_with_response(
        Response(bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/xml"})
    )
    with pytest.raises(FetchError, match="larger than 10000 bytes"):
        fetcher.get(LOCAL, httpserver.url_for("/bomb"))


def test_http_error_status_is_reported(httpserver, fetcher):
    httpserver.expect_request("/gone").respond_with_data("", status=404)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetcher.get(LOCAL, httpserver.url_for("/gone"), retries=0)


def test_unreachable_host_is_a_clean_error(fetcher):
    with pytest.raises(FetchError, match="cannot connect"):
        fetcher.get(LOCAL, "http://127.0.0.1:9/feed", retries=0)


def test_private_addresses_refused_unless_allowed():
    with pytest.raises(FetchError, match=r"refusing to fetch private address 127\.0\.0\.1"):
        check_url("http://127.0.0.1:8080/feed", allow_private=False)
    with pytest.raises(FetchError, match="only http and https"):
        check_url("file:///etc/passwd", allow_private=True)
    check_url("http://127.0.0.1:8080/feed", allow_private=True)


def test_private_address_refused_before_any_request(httpserver):
    """A private URL is refused before a byte is sent (redirect chains to private hosts: test_fetch_attacks)."""
    httpserver.expect_request("/x").respond_with_data("private content")
    public = SourceConfig(name="p", kind="rss", url="http://127.0.0.1/", allow_private=False)
    with Fetcher(FetchConfig()) as f, pytest.raises(FetchError, match="private address"):
        f.get(public, httpserver.url_for("/x"))
    assert httpserver.log == []


# --- issue #3: politeness and failure modes ---------------------------------------

import time  # noqa: E402
from email.utils import formatdate  # noqa: E402

from digest.fetch import DeferredError, GoneError, parse_retry_after  # noqa: E402


def requests_to(httpserver, path):
    return [r for r, _ in httpserver.log if r.path == path]


def test_gone_is_its_own_error(httpserver, fetcher):
    httpserver.expect_request("/gone").respond_with_data("", status=410)
    with pytest.raises(GoneError, match="HTTP 410"):
        fetcher.get(LOCAL, httpserver.url_for("/gone"))
    assert len(requests_to(httpserver, "/gone")) == 1  # never retried


def test_retry_after_seconds_blocks_that_host_only(httpserver, fetcher):
    httpserver.expect_request("/busy").respond_with_data("", status=429, headers={"Retry-After": "120"})
    httpserver.expect_request("/other").respond_with_data("ok")
    with pytest.raises(DeferredError) as info:
        fetcher.get(LOCAL, httpserver.url_for("/busy"))
    assert 119 <= info.value.wait_s <= 120
    # The same host is not asked again during the wait: no request leaves.
    with pytest.raises(DeferredError, match="asked us to retry"):
        fetcher.get(LOCAL, httpserver.url_for("/other"))
    assert requests_to(httpserver, "/other") == []
    # Another host (same server, other name) carries on.
    other_host = httpserver.url_for("/other").replace("localhost", "127.0.0.1")
    if "127.0.0.1" in httpserver.url_for("/other"):
        other_host = httpserver.url_for("/other").replace("127.0.0.1", "localhost")
    assert fetcher.get(LOCAL, other_host).body == b"ok"
    assert len(requests_to(httpserver, "/busy")) == 1


def test_retry_after_http_date_on_503_is_capped(httpserver):
    later = formatdate(time.time() + 7200, usegmt=True)
    httpserver.expect_request("/down").respond_with_data("", status=503, headers={"Retry-After": later})
    with Fetcher(FetchConfig(retry_after_max_s=600.0)) as f, pytest.raises(DeferredError) as info:
        f.get(LOCAL, httpserver.url_for("/down"))
    assert info.value.wait_s == 600.0
    assert len(requests_to(httpserver, "/down")) == 1  # Retry-After is obeyed, not retried in a loop


def test_parse_retry_after_forms():
    now = 1_800_000_000.0
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after(formatdate(now + 90, usegmt=True), now=now) == pytest.approx(90.0)
    assert parse_retry_after(formatdate(now - 90, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_transient_5xx_is_retried_with_backoff(httpserver, fetcher, fetch_clock):
    httpserver.expect_oneshot_request("/flaky").respond_with_data("", status=502)
    httpserver.expect_request("/flaky").respond_with_data("fine")
    assert fetcher.get(LOCAL, httpserver.url_for("/flaky"), retries=2).body == b"fine"
    assert fetch_clock.slept >= 0.5  # backed off before the second try (on the fetcher's clock)
    assert len(requests_to(httpserver, "/flaky")) == 2


def test_client_errors_are_not_retried(httpserver, fetcher):
    httpserver.expect_request("/nope").respond_with_data("", status=404)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetcher.get(LOCAL, httpserver.url_for("/nope"), retries=3)
    assert len(requests_to(httpserver, "/nope")) == 1


def test_read_timeout(httpserver):
    httpserver.expect_request("/slow").respond_with_handler(lambda r: (time.sleep(1.5), Response("late"))[1])
    with Fetcher(FetchConfig(timeout_s=0.5, connect_timeout_s=0.5)) as f, pytest.raises(FetchError, match="timed out"):
        f.get(LOCAL, httpserver.url_for("/slow"), retries=0)


def test_total_timeout_holds_against_a_slow_drip(httpserver):
    def drip(_request):
        def body():
            for _ in range(12):
                time.sleep(0.15)  # each read is quick; the whole body is not
                yield b"x" * 10

        return Response(body(), content_type="application/xml")

    httpserver.expect_request("/drip").respond_with_handler(drip)
    # Every read arrives within the per-read timeout: only a deadline on the whole fetch can stop it.
    with Fetcher(FetchConfig(timeout_s=0.6, connect_timeout_s=0.5)) as f, pytest.raises(FetchError, match="timed out"):
        f.get(LOCAL, httpserver.url_for("/drip"), retries=0)


def test_user_agent_carries_the_contact_url(httpserver):
    ua = "Digest/0.1 (+https://lab.example/digest; mailto:ops@lab.example)"
    httpserver.expect_request("/ua", headers={"User-Agent": ua}).respond_with_data("ok")
    with Fetcher(FetchConfig(user_agent=ua)) as f:
        assert f.get(LOCAL, httpserver.url_for("/ua")).body == b"ok"


def test_min_interval_is_per_host(httpserver, fetch_clock):
    httpserver.expect_request("/a").respond_with_data("a")
    paced = SourceConfig(name="p", kind="rss", url="http://127.0.0.1/", allow_private=True, min_interval_s=30.0)
    url = httpserver.url_for("/a")
    other = url.replace("localhost", "127.0.0.1") if "localhost" in url else url.replace("127.0.0.1", "localhost")
    with Fetcher(FetchConfig()) as f:
        f.get(paced, url)
        f.get(paced, other)  # another host: no wait
        assert fetch_clock.slept == 0
        f.get(paced, url)  # same host again: waits out the interval (on the fetcher's clock, so no real wait)
        assert 29.0 < fetch_clock.slept <= 30.0
