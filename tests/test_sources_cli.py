"""Following blogs from the CLI (issue #15): `sources add` finds a page's feed on a real local server, OPML import
and export with real reader exports, the config edited in place with its comments kept."""

from __future__ import annotations

import shutil
from pathlib import Path

import listparser
import pytest

from digest.cli import main
from digest.config import load_config
from digest.discover import advertised_feeds, feed_info, guessed_feeds, read_opml, source_name
from tests.conftest import serve_folder, write_config

REAL = Path(__file__).parent / "data" / "real"
FEED = REAL / "feeds" / "hugo-bootdev.xml"
PAGE = """<!doctype html><html><head><title>Boot.dev</title>
<link rel="alternate" type="application/rss+xml" title="Comments" href="/comments.xml">
<link rel="alternate" type="application/rss+xml" title="Boot.dev Blog" href="{href}">
</head><body><h1>Blog</h1></body></html>"""


@pytest.fixture
def site(tmp_path):
    """A blog on 127.0.0.1: /blog/ advertises its feed, /plain/ has none, /hidden/ has one at a usual path only."""
    root = tmp_path / "www"
    for folder in ("blog", "plain", "hidden"):
        (root / folder).mkdir(parents=True)
    shutil.copy(FEED, root / "blog" / "index.xml")
    (root / "blog" / "index.html").write_text(PAGE.format(href="index.xml"))
    (root / "plain" / "index.html").write_text("<html><head><title>No feed</title></head><body>hi</body></html>")
    (root / "hidden" / "index.html").write_text("<html><head><title>Quiet</title></head><body>hi</body></html>")
    shutil.copy(FEED, root / "hidden" / "atom.xml")
    with serve_folder(root) as base:
        yield base


@pytest.fixture
def cfg(tmp_path):
    path = write_config(tmp_path, "")
    path.write_text("# my lab's Digest\n" + path.read_text() + "\n# keep this comment\n")
    return path


def run(runner, cfg, *args, ok=True):
    result = runner.invoke(main, ["--config", str(cfg), "sources", *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_add_finds_the_advertised_feed(runner, cfg, site):
    out = run(runner, cfg, "add", f"{site}/blog/", "--allow-private").output
    assert "Boot.dev Blog, 2 entries" in out and "newest: 'Title 1' (2023-10-22)" in out
    config = load_config(cfg)
    (source,) = config.sources
    assert (source.name, source.kind, source.url, source.allow_private) == (
        "boot-dev-blog",
        "rss",
        f"{site}/blog/index.xml",
        True,
    )
    assert source.display_name == "Boot.dev Blog"  # cards show the feed's own title
    assert dict(config.site.source_titles) == {"boot-dev-blog": "Boot.dev Blog"}
    text = cfg.read_text()
    assert text.startswith("# my lab's Digest") and "# keep this comment" in text and "# Boot.dev Blog" in text
    again = run(runner, cfg, "add", f"{site}/blog/index.xml", "--allow-private", ok=False)
    assert again.exit_code == 1 and "already followed as 'boot-dev-blog'" in again.output
    listed = run(runner, cfg, "list").output
    assert "boot-dev-blog" in listed and "index.xml" in listed


def test_add_tries_the_usual_paths_and_takes_a_feed_url_as_is(runner, cfg, site):
    run(runner, cfg, "add", f"{site}/hidden/", "--allow-private", "--name", "quiet")
    assert load_config(cfg).source("quiet").url == f"{site}/hidden/atom.xml"
    run(runner, cfg, "add", f"{site}/blog/index.xml", "--allow-private", "--name", "direct")
    assert load_config(cfg).source("direct").url == f"{site}/blog/index.xml"


def test_add_without_a_feed(runner, cfg, site):
    result = run(runner, cfg, "add", f"{site}/plain/", "--allow-private", ok=False)
    assert result.exit_code == 1 and "no feed found" in result.output and "--item" in result.output
    run(runner, cfg, "add", f"{site}/plain/", "--allow-private", "--item", "li", "--title", "h2", "--link", "a")
    (source,) = load_config(cfg).sources
    assert source.kind == "html" and source.selectors == {"item": "li", "title": "h2", "link": "a"}


def test_add_errors_are_one_line_and_leave_the_config(runner, cfg, site):
    before = cfg.read_text()
    for args, message in [
        (["add", "ftp://example.org/feed"], "is not an http(s) URL"),
        (["add", f"{site}/blog/"], "private"),  # 127.0.0.1 without --allow-private
        (["add", "http://127.0.0.1:9/", "--allow-private"], "cannot connect"),
    ]:
        result = run(runner, cfg, *args, ok=False)
        assert result.exit_code == 1 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert cfg.read_text() == before


def test_remove_keeps_everything_else(runner, cfg, site):
    run(runner, cfg, "add", f"{site}/blog/", "--allow-private", "--name", "one")
    run(runner, cfg, "add", f"{site}/hidden/", "--allow-private", "--name", "two")
    out = run(runner, cfg, "remove", "one").output
    assert "Removed source 'one'" in out
    assert [s.name for s in load_config(cfg).sources] == ["two"]
    text = cfg.read_text()
    assert "# keep this comment" in text


def test_remove_takes_the_sources_own_comment_and_leaves_the_next_ones(runner, tmp_path):
    cfg = write_config(
        tmp_path,
        """
        # the first blog
        [[source]]
        name = "first"
        kind = "rss"
        url = "https://a.example/feed.xml"

        # the second blog
        [[source]]
        name = "second"
        kind = "rss"
        url = "https://b.example/feed.xml"
        """,
    )
    run(runner, cfg, "remove", "first")
    text = cfg.read_text()
    assert "# the first blog" not in text and "a.example" not in text
    assert '# the second blog\n[[source]]\nname = "second"' in text
    assert [s.name for s in load_config(cfg).sources] == ["second"]
    missing = run(runner, cfg, "remove", "one", ok=False)
    assert missing.exit_code == 1 and "no source named 'one'" in missing.output


def test_import_real_feedly_exports_once(runner, cfg):
    out = run(runner, cfg, "import", str(REAL / "opml" / "feedly-ml.opml")).output
    assert "Imported 9 feeds" in out
    out = run(runner, cfg, "import", str(REAL / "opml" / "feedly-partial.opml")).output
    assert "Imported 4 feeds" in out
    config = load_config(cfg)
    assert len(config.sources) == 13 and len({s.name for s in config.sources}) == 13
    urls = {s.url for s in config.sources}
    assert "http://quantombone.blogspot.com/feeds/posts/default" in urls
    assert "https://makeoptim.com/feed.xml" in urls  # an outline with no title gets a name from its host
    assert "makeoptim-com" in {s.name for s in config.sources}
    again = run(runner, cfg, "import", str(REAL / "opml" / "feedly-ml.opml")).output
    assert "Imported 0 feeds" in again and "9 already followed" in again
    assert "# ML,BD,DA / Tombone's Computer Vision Blog" in cfg.read_text()


def test_import_errors(runner, cfg, tmp_path):
    missing = run(runner, cfg, "import", str(tmp_path / "none.opml"), ok=False)
    assert missing.exit_code == 1 and "OPML file not found" in missing.output
    bad = tmp_path / "bad.opml"
    bad.write_text("this is not xml at all <<<")
    result = run(runner, cfg, "import", str(bad), ok=False)
    assert result.exit_code == 1 and "bad.opml: not an OPML file" in result.output


def test_export_round_trips_through_listparser(runner, cfg):
    run(runner, cfg, "import", str(REAL / "opml" / "feedly-ml.opml"))
    exported = run(runner, cfg, "export").output
    parsed = listparser.parse(exported.encode())
    assert not parsed.bozo
    assert "Tombone's Computer Vision Blog" in {f.title for f in parsed.feeds}  # the feed's title, not our name
    assert {f.url for f in parsed.feeds} == {f.url for f in read_opml((REAL / "opml" / "feedly-ml.opml").read_bytes())}


def test_discovery_helpers():
    assert advertised_feeds(PAGE.format(href="feed.xml").encode(), "https://b.test/blog/") == [
        "https://b.test/blog/feed.xml"  # the comments feed is not the blog's feed
    ]
    guesses = guessed_feeds("https://b.test/blog/post.html")
    assert guesses[0] == "https://b.test/blog/feed" and "https://b.test/index.xml" in guesses
    info = feed_info(FEED.read_bytes())
    assert info is not None and info.title == "Boot.dev Blog" and info.entries == 2
    assert feed_info(b"<html><body>not a feed</body></html>") is None
    assert source_name("Boot.dev Blog", "https://x", {"boot-dev-blog"}) == "boot-dev-blog-2"


def test_import_titles_cannot_write_toml_into_the_config(runner, cfg, tmp_path):
    """An OPML title with line breaks (`&#10;`) or control characters lands in a `# comment` line: it must stay one
    comment, not become a `[[source]]` of its own (here one with allow_private = true, reaching the metadata host)."""
    payload = (
        "Nice&#10;[[source]]&#10;name = &quot;evil&quot;&#10;kind = &quot;rss&quot;&#10;"
        "url = &quot;http://169.254.169.254/latest/&quot;&#10;allow_private = true&#10;#"
    )
    opml = tmp_path / "evil.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>'
        f'<outline type="rss" text="{payload}" xmlUrl="http://example.com/feed.xml"/>'
        '<outline type="rss" text="carriage&#13;return &#127; del" xmlUrl="http://example.com/two.xml"/>'
        "</body></opml>"
    )
    out = run(runner, cfg, "import", str(opml)).output
    assert "Imported 2 feeds" in out
    config = load_config(cfg)
    assert [s.url for s in config.sources] == ["http://example.com/feed.xml", "http://example.com/two.xml"]
    assert not any(s.allow_private for s in config.sources)
    text = cfg.read_text()
    assert '\n[[source]]\nname = "evil"' not in text and "# keep this comment" in text


def test_import_of_a_huge_opml_is_linear(runner, cfg, tmp_path):
    """100k outlines of one host used to take minutes (names numbered from -2 each time, a quadratic duplicate-name
    check and string concatenation): naming is linear, and a 20k-feed export imports in seconds."""

    class Counting(set):
        checks = 0

        def __contains__(self, item):
            Counting.checks += 1
            return super().__contains__(item)

    taken, next_n = Counting(), {}
    for _ in range(3000):
        taken.add(source_name("", "http://example.com/x.xml", taken, next_n))
    assert Counting.checks <= 2 * 3000 and len(taken) == 3000 and "example-com-3000" in taken
    rows = "".join(f'<outline type="rss" text="!" xmlUrl="http://example.com/{i}.xml"/>' for i in range(20000))
    opml = tmp_path / "big.opml"
    opml.write_text(f'<?xml version="1.0"?><opml version="2.0"><head/><body>{rows}</body></opml>')
    assert "Imported 20000 feeds" in run(runner, cfg, "import", str(opml)).output  # linear: counted above
    names = [s.name for s in load_config(cfg).sources]
    assert len(set(names)) == 20000 and names[-1] == "example-com-20000"


def test_editing_keeps_a_symlinked_config_and_its_permissions(runner, cfg, tmp_path):
    """A config symlinked from a dotfiles checkout is edited where it lives (the link stays a link), and the file
    keeps its mode instead of mkstemp's 0600."""
    real = tmp_path / "dotfiles" / cfg.name
    real.parent.mkdir()
    shutil.copy(cfg, real)
    shutil.copy(cfg.parent / "topics.toml", real.parent / "topics.toml")
    real.chmod(0o644)
    cfg.unlink()
    cfg.symlink_to(real)
    opml = tmp_path / "one.opml"
    opml.write_text(
        '<opml version="2.0"><body><outline type="rss" text="a" xmlUrl="http://example.com/f.xml"/></body></opml>'
    )
    run(runner, cfg, "import", str(opml))
    assert cfg.is_symlink() and cfg.resolve() == real.resolve()
    assert (real.stat().st_mode & 0o777) == 0o644
    assert [s.url for s in load_config(real).sources] == ["http://example.com/f.xml"]
    run(runner, cfg, "remove", "a")
    assert cfg.is_symlink() and load_config(real).sources == ()


def test_an_edit_that_toml_refuses_is_one_error_line(runner, cfg, tmp_path):
    """Sources written as an inline array (`source = [{...}]`) cannot take an appended [[source]]: one Error line
    naming the config, which stays as it was (it was a TOMLDecodeError traceback)."""
    text = cfg.read_text().replace(
        "# my lab's Digest\n", '# my lab\'s Digest\nsource = [{name = "inl", kind = "rss", url = "http://e.test/i"}]\n'
    )
    cfg.write_text(text)
    opml = tmp_path / "one.opml"
    opml.write_text(
        '<opml version="2.0"><body><outline type="rss" text="a" xmlUrl="http://example.com/f.xml"/></body></opml>'
    )
    result = run(runner, cfg, "import", str(opml), ok=False)
    assert result.exit_code == 1 and "would not be valid TOML" in result.output and "Traceback" not in result.output
    assert cfg.read_text() == text


def test_add_names_the_advertised_feed_it_refused(runner, cfg, tmp_path, monkeypatch):
    """A public page advertising a feed on a private address (or 169.254.169.254): nothing private is fetched, and
    the error says why, not 'no <link rel="alternate">'."""
    from digest import fetch
    from tests.test_fetch_attacks import PUBLIC_IP, Resolver, Server, treat_as_public

    public, private = Server(PUBLIC_IP), Server("127.0.0.1")
    try:
        private.routes["/feed.xml"] = (200, {"Content-Type": "application/rss+xml"}, FEED.read_bytes())
        page = PAGE.format(href=f"http://internal.test:{private.port}/feed.xml")
        public.routes["/"] = (200, {"Content-Type": "text/html"}, page.encode())
        resolver = Resolver({"public.test": [[PUBLIC_IP]], "internal.test": [["127.0.0.1"]]})
        real = fetch.Fetcher
        monkeypatch.setattr(
            fetch, "Fetcher", lambda config, **kw: real(config, resolver=resolver, is_public=treat_as_public, **kw)
        )
        before = cfg.read_text()
        result = run(runner, cfg, "add", f"http://public.test:{public.port}/", ok=False)
        assert result.exit_code == 1 and "the feed the page advertises could not be read" in result.output
        assert "refusing to fetch private address 127.0.0.1" in result.output
        assert private.requests == [] and cfg.read_text() == before
    finally:
        public.close()
        private.close()
