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


def test_redirect_to_private_address_refused(httpserver):
    public = SourceConfig(name="p", kind="rss", url="http://127.0.0.1/", allow_private=False)
    with Fetcher(FetchConfig()) as f, pytest.raises(FetchError, match="private address"):
        f.get(public, httpserver.url_for("/x"))
