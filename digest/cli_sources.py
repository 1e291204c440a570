"""CLI for following blogs: `sources add/list/remove/import/export` (issue #15). The config file is the list of
sources; these commands edit it in place (comments kept) and never touch stored items."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import click

from digest.cli import State, pass_state
from digest.cli_ingest import sources_group
from digest.errors import DigestError

SELECTOR_OPTIONS = ("item", "title", "link", "summary", "date", "tags")


def _check_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DigestError(f"{url!r} is not an http(s) URL")
    return url.strip()


def find_feed(config, url: str, allow_private: bool):
    """(feed URL, FeedInfo, why) for a page or feed URL; (None, None, why) when it has no feed we may read, `why`
    naming the first feed the page advertises that could not be fetched (a private address, say), else ''."""
    from digest.config import SourceConfig
    from digest.discover import advertised_feeds, feed_info, guessed_feeds
    from digest.fetch import Fetcher, FetchError

    probe = SourceConfig(name="sources-add", kind="rss", url=url, allow_private=allow_private)
    with Fetcher(config.fetch) as fetcher:
        try:
            page = fetcher.get(probe, url, retries=0, min_interval_s=0)
        except FetchError as exc:
            raise DigestError(str(exc)) from None
        info = feed_info(page.body, page.headers)
        if info:
            return page.url, info, ""
        advertised = advertised_feeds(page.body, page.url)
        why = ""
        for candidate in [*advertised, *guessed_feeds(page.url)]:
            try:
                response = fetcher.get(probe, candidate, retries=0, min_interval_s=0)
            except FetchError as exc:
                if candidate in advertised and not why:
                    why = str(exc)
                continue
            info = feed_info(response.body, response.headers)
            if info:
                return response.url, info, ""
    return None, None, why


@sources_group.command("add")
@click.argument("url")
@click.option("--name", help="Source name (default: from the feed's title).")
@click.option("--allow-private", is_flag=True, help="Allow a feed on a private network or 127.0.0.1.")
@click.option("--item", help="HTML source: CSS selector of one post (only when the page has no feed).")
@click.option("--title", "title_sel", help="HTML source: selector of the title inside an item.")
@click.option("--link", help="HTML source: selector of the link inside an item (or the item itself).")
@click.option("--summary", help="HTML source: selector of the teaser.")
@click.option("--date", help="HTML source: selector of the date.")
@click.option("--tags", help="HTML source: selector of the blog's own tags.")
@pass_state
def sources_add(state: State, url: str, name: str | None, allow_private: bool, title_sel: str | None, **sel) -> None:
    """Follow a blog: find the feed of URL (or take URL as the feed) and append a [[source]] to the config."""
    from digest.config_edit import append_sources
    from digest.discover import source_name

    url = _check_url(url)
    config = state.config
    taken = {s.name for s in config.sources}
    if name and name in taken:
        raise DigestError(f"a source named {name!r} already exists in {config.path}")
    sel["title"] = title_sel
    selectors = {k: v for k, v in sel.items() if v}
    feed_url, info, why = find_feed(config, url, allow_private)
    if feed_url is None:
        if why and not selectors:
            raise DigestError(f"{url}: the feed the page advertises could not be read: {why}")
        if not selectors:
            raise DigestError(
                f'{url}: no feed found (no <link rel="alternate"> and none of the usual paths); '
                "pass --item, --title and --link selectors to follow it as an HTML page"
            )
        missing = [k for k in ("item", "title", "link") if k not in selectors]
        if missing:
            raise DigestError(f"an HTML source needs --{', --'.join(missing)}")
        block = {"name": name or source_name("", url, taken), "kind": "html", "url": url, **selectors}
        title = urlsplit(url).netloc
    else:
        for s in config.sources:
            if s.url == feed_url:
                raise DigestError(f"{feed_url} is already followed as {s.name!r}")
        block = {"name": name or source_name(info.title, feed_url, taken), "kind": "rss", "url": feed_url}
        if info.title:
            block["display_name"] = info.title  # what cards show: the feed's own title
        title = info.title
    if allow_private:
        block["allow_private"] = True
    append_sources(config.path, [block], [title or block["url"]])
    if info:
        newest = f"newest: {info.newest_title!r}" + (f" ({info.newest_date:%Y-%m-%d})" if info.newest_date else "")
        click.echo(f"Found the feed {feed_url}: {info.title or '(untitled)'}, {info.entries} entries; {newest}")
    click.echo(f"Added source {block['name']!r} ({block['kind']}) to {config.path}; `digest ingest` fetches it.")


@sources_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_state
def sources_list(state: State, as_json: bool) -> None:
    """The configured sources: name, kind and URL or query."""
    rows = [
        {"name": s.name, "kind": s.kind, "url": s.url, "query": s.query, "allow_private": s.allow_private}
        for s in state.config.sources
    ]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    click.echo(f"{'name':28} {'kind':6} url / query")
    for r in rows:
        click.echo(f"{r['name']:28} {r['kind']:6} {r['url'] or r['query']}")


@sources_group.command("remove")
@click.argument("name")
@pass_state
def sources_remove(state: State, name: str) -> None:
    """Stop following NAME: its [[source]] leaves the config (stored items stay)."""
    from digest.config_edit import remove_source

    if name not in {s.name for s in state.config.sources}:
        raise DigestError(f"no source named {name!r} in {state.config.path} (see `digest sources list`)")
    remove_source(state.config.path, name)
    click.echo(f"Removed source {name!r} from {state.config.path}; its stored items stay.")


@sources_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--allow-private", is_flag=True, help="Mark every imported source allow_private = true.")
@pass_state
def sources_import(state: State, file: Path, allow_private: bool) -> None:
    """Follow every feed of an OPML file (a feed reader's export); feeds already followed are skipped."""
    from digest.config_edit import append_sources
    from digest.discover import read_opml, source_name

    if not file.is_file():
        raise DigestError(f"{file}: OPML file not found")
    try:
        feeds = read_opml(file.read_bytes())
    except DigestError as exc:
        raise DigestError(f"{file}: {exc}") from None
    config = state.config
    taken = {s.name for s in config.sources}
    followed = {s.url for s in config.sources}
    blocks, comments, skipped, next_n = [], [], 0, {}
    for f in feeds:
        if f.url in followed:
            skipped += 1
            continue
        name = source_name(f.title, f.url, taken, next_n)
        taken.add(name)
        followed.add(f.url)
        block = {"name": name, "kind": "rss", "url": f.url}
        if f.title:
            block["display_name"] = f.title
        if allow_private:
            block["allow_private"] = True
        blocks.append(block)
        comments.append(" / ".join([*f.folders, f.title or f.url]))
    if blocks:
        append_sources(config.path, blocks, comments)
    click.echo(f"Imported {len(blocks)} feeds from {file} into {config.path} ({skipped} already followed).")


@sources_group.command("export")
@pass_state
def sources_export(state: State) -> None:
    """Print the followed feeds as OPML (for a feed reader); arXiv and HTML sources have no feed and are left out."""
    from digest.discover import OpmlFeed, write_opml

    feeds = [OpmlFeed(s.url, s.display_name or s.name) for s in state.config.sources if s.kind == "rss"]
    click.echo(write_opml(feeds, f"Digest sources ({state.config.path.name})"), nl=False)
