"""A week of feed entries, benign and hostile, served on loopback and run through ingest, tag and claims."""

from __future__ import annotations

from html import escape
from html.parser import HTMLParser
from pathlib import Path

from click.testing import CliRunner

from digest.cli import main
from tests.conftest import write_config

WEEK = "2026-W48"
BASE = "https://digest.test/"
LONG_TITLE = "Speculative decoding " + "very long title " * 700  # > 10,000 characters

ENTRIES = [
    (
        "FastSpec: speculative decoding with a tiny draft model",
        "https://blog.test/fastspec",
        "We propose FastSpec, a draft model for speculative decoding. It achieves a 2.5x speedup on Llama. "
        "The drafter is trained with distillation. Code: https://github.com/example/fastspec",
    ),
    (
        "KV cache quantization to 2 bits keeps accuracy",
        "https://blog.test/kv2",
        "We compress the key-value cache to 2 bits. This reduces memory by 80% with no loss in accuracy.",
    ),
    (
        '<script>alert("t")</script><img src=x onerror=alert(1)>Evil\r\nBcc: victim@evil.test\r\nX-Injected: yes',
        "javascript:alert(document.cookie)",
        '<p onclick="alert(2)">Click <a href="javascript:alert(3)">here</a></p><script>alert(4)</script>'
        '<iframe src="https://evil.test/"></iframe><a href="https://ok.test/" onmouseover="alert(6)">ok</a>',
    ),
    (LONG_TITLE, "https://blog.test/long", "A very long title about the draft model. " * 20),
]


def week_feed() -> bytes:
    items = []
    for n, (title, link, body) in enumerate(ENTRIES):
        # CR/LF as character references survive XML parsing, as a hostile feed would send them.
        title_xml = escape(title).replace("\r", "&#13;").replace("\n", "&#10;")
        items.append(
            f"<item><title>{title_xml}</title><link>{escape(link)}</link><guid isPermaLink='false'>w-{n}</guid>"
            f"<pubDate>Tue, 24 Nov 2026 1{n}:00:00 GMT</pubDate><description>{escape(body)}</description>"
            "<category>Speculative Decoding</category></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Week</title>'
        "<link>https://blog.test/</link><description>x</description>" + "".join(items) + "</channel></rss>"
    ).encode()


def published(httpserver, tmp_path: Path, extra: str = "") -> Path:
    """A config whose database holds the week's entries, tagged and with claims; returns the config path."""
    httpserver.expect_request("/week.xml").respond_with_data(week_feed(), content_type="application/rss+xml")
    cfg = write_config(
        tmp_path,
        f"""
        [[source]]
        name = "week-blog"
        kind = "rss"
        url = "{httpserver.url_for("/week.xml")}"
        allow_private = true
        """,
        extra=extra,
    )
    runner = CliRunner()
    for args in (["ingest"], ["tag"], ["claims"]):
        result = runner.invoke(main, ["--config", str(cfg), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return cfg


class Elements(HTMLParser):
    """Every start tag with its attributes, to check that hostile markup stayed text."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def elements(html: str) -> list[tuple[str, dict[str, str]]]:
    parser = Elements()
    parser.feed(html)
    return parser.tags


def assert_inert(html: str, own_scripts: tuple[str, ...] = ()) -> None:
    """No script but our own, no event handler, no iframe, no javascript: URL anywhere in the markup."""
    for tag, attrs in elements(html):
        assert tag not in ("iframe", "object", "embed"), tag
        if tag == "script":
            assert attrs.get("src", "").rsplit("/", 1)[-1] in own_scripts, attrs
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert not value.strip().lower().startswith(("javascript:", "data:text")), (tag, name, value)
