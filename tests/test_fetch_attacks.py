"""Attacks on the fetcher, each against real servers on loopback (issue #17, points 1-4).

"Public" hosts are simulated, never reached: a resolver seam maps test names to loopback addresses, and
the address policy treats 127.0.0.2 (and only it) as public, so the guard still judges every real
private address by the production rule. The "private" server listens on 127.0.0.1 and counts requests.
"""

from __future__ import annotations

import itertools
import socket
import ssl
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from digest.config import FetchConfig, SourceConfig
from digest.errors import FetchError
from digest.fetch import DECODE_PIECE, Fetcher, is_public_address

PUBLIC_IP, PRIVATE_IP = "127.0.0.2", "127.0.0.1"
GUARDED = SourceConfig(name="guarded", kind="rss", url="http://public.test/", min_interval_s=0.0)


def treat_as_public(address: str) -> bool:
    """The production rule, except that the test's stand-in public server counts as public."""
    return address == PUBLIC_IP or is_public_address(address)


class Server:
    """A tiny HTTP server on one loopback address: path -> (status, headers, body); counts every request."""

    def __init__(self, host: str, port: int = 0):
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Host", "")))
                status, headers, body = server.routes.get(self.path, (404, {}, b"not here"))
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    """(public, private) on the same port of 127.0.0.2 and 127.0.0.1, so a rebound name reaches either."""
    private = Server(PRIVATE_IP)
    public = Server(PUBLIC_IP, private.port)
    private.routes["/secret"] = (200, {}, b"internal credentials")
    yield public, private
    public.close()
    private.close()


class Resolver:
    """The resolver seam: name -> list of answers, one per lookup (the last answer repeats)."""

    def __init__(self, answers: dict[str, list[list[str]]]):
        self.answers = answers
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.answers:
            raise socket.gaierror(f"unknown test name {host}")
        queue = self.answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def guarded_fetcher(resolver, **fetch) -> Fetcher:
    config = FetchConfig(timeout_s=3.0, connect_timeout_s=2.0, retries=0, **fetch)
    return Fetcher(config, resolver=resolver, is_public=treat_as_public)


NAMES = {"public.test": [[PUBLIC_IP]], "internal.test": [[PRIVATE_IP]]}


# --- point 4: SSRF through redirects and DNS rebinding ------------------------------------------------


def test_a_public_host_is_fetched_through_the_checked_address(servers):
    public, _ = servers
    public.routes["/feed"] = (200, {}, b"<rss/>")
    resolver = Resolver(dict(NAMES))
    with guarded_fetcher(resolver) as f:
        resp = f.get(GUARDED, f"http://public.test:{public.port}/feed")
    assert resp.body == b"<rss/>"
    assert public.requests == [("/feed", f"public.test:{public.port}")]  # Host header kept, IP pinned
    assert resolver.lookups == ["public.test"]


@pytest.mark.parametrize("target", ["http://internal.test:{port}/secret", "http://127.0.0.1:{port}/secret"])
def test_redirect_to_a_private_host_at_the_first_hop_never_reaches_it(servers, target):
    public, private = servers
    public.routes["/feed"] = (302, {"Location": target.format(port=private.port)}, b"")
    with guarded_fetcher(Resolver(dict(NAMES))) as f, pytest.raises(FetchError, match=r"private address 127\.0\.0\.1"):
        f.get(GUARDED, f"http://public.test:{public.port}/feed")
    assert [p for p, _ in public.requests] == ["/feed"]
    assert private.requests == []  # refused before any byte went to the private host


def test_redirect_to_a_private_host_at_the_second_hop_never_reaches_it(servers):
    public, private = servers
    public.routes["/feed"] = (301, {"Location": "/moved"}, b"")
    public.routes["/moved"] = (307, {"Location": f"http://internal.test:{private.port}/secret"}, b"")
    with guarded_fetcher(Resolver(dict(NAMES))) as f:
        with pytest.raises(FetchError, match=r"redirect to http://internal\.test.*private address") as info:
            f.get(GUARDED, f"http://public.test:{public.port}/feed")
        assert f.last.hops[-1].startswith("http://internal.test")
    assert "internal credentials" not in str(info.value)
    assert [p for p, _ in public.requests] == ["/feed", "/moved"]
    assert private.requests == []


def test_dns_rebinding_cannot_reach_private_content(servers):
    """The name answers public first and private after: the one lookup is checked and connected to."""
    public, private = servers
    public.routes["/secret"] = (200, {}, b"public page")
    resolver = Resolver({"rebind.test": [[PUBLIC_IP], [PRIVATE_IP]]})
    with guarded_fetcher(resolver) as f:
        resp = f.get(GUARDED, f"http://rebind.test:{public.port}/secret")
    assert resp.body == b"public page"
    assert resolver.lookups == ["rebind.test"]
    assert private.requests == []


def test_a_name_with_one_private_answer_among_public_ones_is_refused(servers):
    public, private = servers
    resolver = Resolver({"mixed.test": [[PUBLIC_IP, PRIVATE_IP]]})
    with guarded_fetcher(resolver) as f, pytest.raises(FetchError, match=r"private address 127\.0\.0\.1"):
        f.get(GUARDED, f"http://mixed.test:{public.port}/secret")
    assert public.requests == [] and private.requests == []


@pytest.mark.parametrize(
    "location",
    [
        "data:text/html,<h1>hi</h1>",
        "mailto:ops@lab.test",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "ftp://public.test/feed",
        "http://[::1",
        "http://public.test:99999/",
    ],
)
def test_redirect_to_a_non_http_url_is_a_clean_error(servers, location):
    public, _ = servers
    public.routes["/feed"] = (302, {"Location": location}, b"")
    with guarded_fetcher(Resolver(dict(NAMES))) as f, pytest.raises(FetchError, match="redirect to"):
        f.get(GUARDED, f"http://public.test:{public.port}/feed")


@pytest.mark.parametrize("url", ["http://xn--/feed", "http://\u0000x.test/feed", "http://exa mple.test/feed"])
def test_a_malformed_source_url_is_a_clean_error(url):
    with guarded_fetcher(Resolver(dict(NAMES))) as f, pytest.raises(FetchError):
        f.get(GUARDED, url)


def test_a_bad_redirect_breaks_one_source_and_the_ingest_goes_on(httpserver, tmp_path, db):
    from digest import pipeline, store
    from digest.config import load_config
    from tests.conftest import write_config

    httpserver.expect_request("/bad").respond_with_data("", status=302, headers={"Location": "data:,x"})
    httpserver.expect_request("/good").respond_with_data(
        "<rss><channel><item><title>Fine</title><link>https://b.test/1</link></item></channel></rss>",
        content_type="application/rss+xml",
    )
    sources = "".join(
        f'[[source]]\nname = "{n}"\nkind = "rss"\nurl = "{httpserver.url_for("/" + n)}"\nallow_private = true\n'
        for n in ("bad", "good")
    )
    config = load_config(write_config(tmp_path, sources))
    engine = store.open_engine(db.url)
    store.init_db(engine)
    reports = {r.source: r for r in pipeline.ingest(engine, config)}
    assert reports["bad"].status == "broken" and "refused" in reports["bad"].error
    assert reports["good"].status == "ok" and reports["good"].new == 1


def test_arxiv_is_guarded_unless_the_source_allows_private(httpserver, tmp_path, db):
    from digest import pipeline, store
    from digest.config import load_config
    from tests.conftest import write_config

    api = f'arxiv_api = "{httpserver.url_for("/api/query")}?{{}}"\nretries = 0'
    source = '[[source]]\nname = "arxiv-a"\nkind = "arxiv"\nquery = "cat:cs.CL"\n'
    config = load_config(write_config(tmp_path, source, fetch=api))
    engine = store.open_engine(db.url)
    store.init_db(engine)
    [report] = pipeline.ingest(engine, config)
    assert report.status in ("broken", "incomplete") and "private address" in report.error
    assert httpserver.log == []  # the loopback API was never asked


@pytest.mark.parametrize(
    "host", ["127.1", "0x7f.0.0.1", "2130706433", "017700000001", "[::ffff:127.0.0.1]", "localhost", "0.0.0.0"]
)
def test_spellings_of_loopback_through_the_system_resolver_never_connect(servers, host):
    """No seam here: the production resolver and address rule, on names that resolve without any DNS."""
    _, private = servers
    with Fetcher(FetchConfig(timeout_s=3.0, retries=0)) as f, pytest.raises(FetchError, match="private address"):
        f.get(GUARDED, f"http://{host}:{private.port}/secret")
    assert private.requests == []


# --- the address rule itself --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "::",
        "fd00::1",
        "fe80::1%eth0",
        "::ffff:127.0.0.1",
        "::ffff:7f00:1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo wrapping 127.0.0.1
    ],
)
def test_non_public_addresses_in_any_spelling(address):
    assert not is_public_address(address)


def test_global_unicast_is_public():
    assert is_public_address("1.1.1.1") and is_public_address("2606:4700::1111")


# --- TLS: the pinned connection still verifies the certificate of the name --------------------------


def test_tls_to_a_pinned_address_sends_sni_and_checks_the_certificate_of_the_name():
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("public.test").configure_cert(server_ctx)
    seen: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: seen.append(name)
    server = Server(PUBLIC_IP)
    server.routes["/feed"] = (200, {}, b"over tls")
    server.httpd.socket = server_ctx.wrap_socket(server.httpd.socket, server_side=True)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    resolver = Resolver({"public.test": [[PUBLIC_IP]], "other.test": [[PUBLIC_IP]]})
    try:
        config = FetchConfig(timeout_s=3.0, connect_timeout_s=2.0, retries=0)
        with Fetcher(config, resolver=resolver, is_public=treat_as_public, verify=client_ctx) as f:
            assert f.get(GUARDED, f"https://public.test:{server.port}/feed").body == b"over tls"
            with pytest.raises(FetchError, match="cannot connect"):  # same address, a name the cert lacks
                f.get(GUARDED, f"https://other.test:{server.port}/feed")
    finally:
        server.close()
    assert seen[0] == "public.test"


# --- point 1: a nested gzip bomb stops at the cap, layer by layer ------------------------------------


def gzip_stream(chunks) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return b"".join(comp.compress(c) for c in chunks) + comp.flush()


@pytest.fixture(scope="module")
def two_layer_bomb() -> bytes:
    """gzip(gzip(256 MiB of zeros)): a few KB on the wire."""
    inner = gzip_stream(itertools.repeat(b"\0" * (1 << 20), 256))
    return gzip_stream([inner])


def test_two_layer_gzip_bomb_stops_at_the_cap_in_every_layer(servers, two_layer_bomb):
    public, _ = servers
    assert len(two_layer_bomb) < 10_000
    public.routes["/bomb"] = (200, {"Content-Encoding": "gzip, gzip"}, two_layer_bomb)
    cap = 1_000_000
    with guarded_fetcher(Resolver(dict(NAMES)), max_bytes=cap) as f:
        with pytest.raises(FetchError, match=f"larger than {cap} bytes"):
            f.get(GUARDED, f"http://public.test:{public.port}/bomb")
        # Memory is bounded by what each layer produced before the cap fired (not by the bomb's 256 MiB).
        assert len(f.last.layers) == 2
        assert all(n <= cap + DECODE_PIECE for n in f.last.layers), f.last.layers


def test_two_honest_layers_decode(servers):
    public, _ = servers
    text = b"<rss>" + b"x" * 50_000 + b"</rss>"
    public.routes["/feed"] = (200, {"Content-Encoding": "deflate, gzip"}, gzip_stream([zlib.compress(text)]))
    with guarded_fetcher(Resolver(dict(NAMES))) as f:
        assert f.get(GUARDED, f"http://public.test:{public.port}/feed").body == text


def test_three_layers_or_an_unknown_coding_are_refused(servers):
    public, _ = servers
    public.routes["/three"] = (200, {"Content-Encoding": "gzip, gzip, gzip"}, b"x")
    public.routes["/br"] = (200, {"Content-Encoding": "br"}, b"x")
    with guarded_fetcher(Resolver(dict(NAMES))) as f:
        with pytest.raises(FetchError, match="at most 2"):
            f.get(GUARDED, f"http://public.test:{public.port}/three")
        with pytest.raises(FetchError, match="unsupported Content-Encoding 'br'"):
            f.get(GUARDED, f"http://public.test:{public.port}/br")


# --- point 2: one deadline for connect, headers and body ---------------------------------------------


class TickingClock:
    """An injected clock that moves `step` seconds each time it is read: the deadline is reached after a
    fixed number of socket operations, whatever the machine's load."""

    def __init__(self, step: float):
        self.now, self.step, self.reads = 0.0, step, 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.step
        return self.now


@contextmanager
def header_drip(total: int, interval: float) -> Iterator[tuple[int, dict]]:
    """A raw socket server that answers with a status line, then header bytes one at a time."""
    listener = socket.create_server((PUBLIC_IP, 0))
    state = {"sent": 0, "done": threading.Event()}

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                for _ in range(total):
                    conn.sendall(b"X")
                    state["sent"] += 1
                    state["done"].wait(interval)
            except OSError:
                pass
        state["done"].set()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1], state
    finally:
        state["done"].set()
        listener.close()


def test_headers_at_one_byte_a_tick_end_at_the_deadline():
    clock = TickingClock(step=0.5)  # timeout_s = 10: about 20 clock reads, far fewer than 2,000 header bytes
    with header_drip(total=2000, interval=0.005) as (port, state):
        config = FetchConfig(timeout_s=10.0, connect_timeout_s=10.0, retries=2)
        resolver = Resolver(dict(NAMES))
        with Fetcher(config, resolver=resolver, is_public=treat_as_public, clock=clock) as f:
            with pytest.raises(FetchError, match=r"timed out \(the whole fetch has 10s\)"):
                f.get(GUARDED, f"http://public.test:{port}/feed")
            assert "timed out" in f.last.outcome
        assert clock.now >= 10.0 and clock.reads <= 40
        assert state["sent"] < 2000  # the client hung up long before the server finished its headers


def test_a_resolver_that_hangs_is_held_to_the_deadline():
    hang = threading.Event()

    def stuck(host: str, port: int) -> list[str]:
        hang.wait(30)
        return [PUBLIC_IP]

    clock = TickingClock(step=0.0)
    config = FetchConfig(timeout_s=0.3, connect_timeout_s=0.3, retries=0)
    try:
        with (
            Fetcher(config, resolver=stuck, is_public=treat_as_public, clock=clock) as f,
            pytest.raises(FetchError, match=r"timed out|resolving"),
        ):
            f.get(GUARDED, "http://slow-dns.test/feed")
    finally:
        hang.set()


# --- point 10: nested markup costs linear work ----------------------------------------------------------

from digest.normalize import HTML_INPUT_MAX, MAX_DEPTH, bound_html  # noqa: E402
from digest.parse import parse_feed, parse_html  # noqa: E402


def max_depth(html: str) -> int:
    """Open-element depth of markup made of elements that all need their end tag (as the test inputs are)."""
    import re

    depth = deepest = 0
    for closing in re.findall(r"<(/?)[a-z]", html):
        depth += -1 if closing else 1
        deepest = max(deepest, depth)
    return deepest


def nested(n: int, inner: str) -> str:
    return "<div>" * n + inner + "</div>" * n


def test_deep_nesting_is_bounded_and_the_text_kept():
    bounded = bound_html(nested(5_000, "<em>deep</em> text"))
    assert max_depth(bounded) == MAX_DEPTH
    assert bounded.count("<") == 2 * MAX_DEPTH  # the 9,874 deeper tags are gone, <em> with them
    assert "deep</em> text" not in bounded and "deep text" in bounded


def test_the_sanitiser_gets_a_capped_input():
    hostile = nested(50_000, "x")  # 0.55 MB: the issue's 12 CPU s feed
    assert len(bound_html(hostile)) <= HTML_INPUT_MAX
    assert max_depth(bound_html(hostile)) <= MAX_DEPTH


def test_ordinary_markup_passes_unchanged():
    post = (
        "<p>One<p>Two <a href='https://x.test/?a=1&b=2' title='a>b'>link</a><br>"
        + "<ul><li>a<li>b</ul><blockquote><p><em>q</em></blockquote><img src=x.png/>" * 200
    )
    assert bound_html(post) == post


def test_a_feed_with_fifty_thousand_nested_divs_parses_to_one_clean_entry():
    description = "<p>Headline: 6.17x speedup.</p>" + nested(50_000, "buried")
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>f</title><item><title>T</title>'
        f"<link>https://b.test/1</link><description><![CDATA[{description}]]></description></item></channel></rss>"
    ).encode()
    [entry] = parse_feed(body, {}, "https://b.test/").entries
    assert entry.summary.startswith("Headline: 6.17x speedup.")
    assert max_depth(entry.summary_html) <= MAX_DEPTH


def test_an_html_source_page_nested_beyond_the_bound_still_yields_its_items():
    items = "".join(f'<article><h2><a href="/p/{i}">Post {i}</a></h2></article>' for i in range(5))
    page = f"<html><body>{items}{nested(100_000, 'x')}</body></html>".encode()
    result = parse_html(page, {"item": "article", "title": "h2", "link": "a"}, "https://b.test/")
    assert [e.title for e in result.entries] == [f"Post {i}" for i in range(5)]


def test_a_feed_nesting_elements_past_the_xml_depth_limit_is_refused_at_once():
    """Elements (not escaped markup) nested 100,000 deep: libxml2 stops at depth 256 and the feed is refused,
    rather than handed to feedparser (linear, but about 0.6 CPU s a MB)."""
    desc = nested(100_000, "x")
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>f</title><item><title>T</title>'
        f"<link>https://b.test/1</link><description>{desc}</description></item></channel></rss>"
    ).encode()
    with pytest.raises(FetchError, match="nested more than 256 deep"):
        parse_feed(body, {}, "https://b.test/")


def test_long_text_runs_reach_the_sanitiser_in_short_nodes_and_read_the_same():
    """html5ever copies a growing text node at each '&' or '©': a 1,000,000-character run cost 10-22 CPU s.
    The work done is bounded by the longest run it gets; the text that comes out is unchanged."""
    import re

    from digest.normalize import TEXT_RUN_MAX, sanitize_html, short_text_nodes

    for flood in ("&" * 100_000, "©" * 100_000, "<textarea>" + "&amp;" * 20_000, "<TITLE >" + "x " * 50_000):
        runs = re.findall(r"[^<>]*", short_text_nodes(flood))
        assert max(map(len, runs)) <= TEXT_RUN_MAX
    prose = "<p>" + "Speculative decoding with a draft model &amp; a verifier, 2.1× faster. " * 300 + "</p>"
    assert sanitize_html(prose) == prose  # comments added to split the run are gone, the text is whole
    link = f'<a href="https://x.test/?{"q=1&amp;" * 200}" title="{"t" * 700}">l</a>'
    assert "<!--" not in sanitize_html(link) and "&lt;!" not in sanitize_html(link)  # tags are not split


def test_bench_sanitize_runs_at_a_tiny_size():
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**os.environ, "BENCH_MB": "0.05", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sanitize")], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 7 and all("CPU s" in line and "entries=" in line for line in lines)


def test_a_feed_of_a_million_items_reads_only_the_ones_it_keeps():
    from digest.parse import feed_items_lxml

    items = "".join(f"<item><title>P{i}</title><link>https://b.test/{i}</link></item>" for i in range(20_000))
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>f</title>{items}</channel></rss>'.encode()
    _link, raws, _warning = feed_items_lxml(body, limit=5)
    assert [r["title"] for r in raws] == [f"P{i}" for i in range(5)]  # 5 read, not 20,000
    assert [e.title for e in parse_feed(body, {}, "https://b.test/", max_entries=5).entries] == [
        f"P{i}" for i in range(5)
    ]
