"""Serve the bundled snapshot on loopback so the demo runs the same fetch and parse code as a real run."""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import replace
from email.utils import formatdate
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from digest.config import REPO_ROOT, Config

SNAPSHOT = REPO_ROOT / "data" / "snapshot"
ENTRY_RE = re.compile(r"<entry>.*?</entry>", re.DOTALL)
SNAPSHOT_MTIME = formatdate(1764000000, usegmt=True)  # fixed: recorded responses never change


class SnapshotHandler(BaseHTTPRequestHandler):
    """Static files under /blogs/ with ETag/Last-Modified, and an arXiv API look-alike under /api/query."""

    def __init__(self, *args, root: Path, queries: dict[str, str], **kwargs):
        self.root = root
        self.queries = queries
        super().__init__(*args, **kwargs)

    def log_message(self, *args) -> None:  # keep the demo's output readable
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/api/query":
            self._arxiv(parse_qs(parts.query))
        elif parts.path.startswith("/blogs/"):
            self._static(self.root / "blogs" / Path(parts.path).name)
        else:
            self._send(404, b"not found", "text/plain")

    def _static(self, path: Path) -> None:
        if not path.is_file():
            self._send(404, b"not found", "text/plain")
            return
        body = path.read_bytes()
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self._send(304, b"", None, {"ETag": etag})
            return
        kind = "application/rss+xml" if path.suffix == ".xml" else "text/html; charset=utf-8"
        self._send(200, body, kind, {"ETag": etag, "Last-Modified": SNAPSHOT_MTIME})

    def _arxiv(self, args: dict[str, list[str]]) -> None:
        query = args.get("search_query", [""])[0]
        name = self.queries.get(query)
        if name is None:
            self._send(400, b"unknown query", "text/plain")
            return
        start = int(args.get("start", ["0"])[0])
        size = int(args.get("max_results", ["100"])[0])
        self._send(
            200,
            arxiv_page((self.root / "arxiv" / f"{name}.xml").read_text("utf-8"), start, size).encode(),
            "application/atom+xml",
        )

    def _send(self, status: int, body: bytes, kind: str | None, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if kind:
            self.send_header("Content-Type", kind)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


def arxiv_page(feed: str, start: int, size: int) -> str:
    """One page of a recorded arXiv result set, with the opensearch counters the API would send."""
    entries = ENTRY_RE.findall(feed)
    head = feed[: feed.index("<entry>")] if entries else feed.replace("</feed>", "")
    head = re.sub(r"<opensearch:totalResults[^>]*>\d+<", f"<opensearch:totalResults>{len(entries)}<", head)
    head = re.sub(r"<opensearch:startIndex[^>]*>\d+<", f"<opensearch:startIndex>{start}<", head)
    head = re.sub(r"<opensearch:itemsPerPage[^>]*>\d+<", f"<opensearch:itemsPerPage>{size}<", head)
    return head + "\n".join(entries[start : start + size]) + "\n</feed>\n"


class SnapshotServer:
    """Context manager: a ThreadingHTTPServer on 127.0.0.1 with a free port, in a daemon thread."""

    def __init__(self, config: Config, root: Path = SNAPSHOT):
        queries = {s.query: s.name for s in config.sources if s.kind == "arxiv"}
        handler = partial(SnapshotHandler, root=root, queries=queries)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> SnapshotServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def demo_config(config: Config, base: str, workspace: Path) -> Config:
    """The default config pointed at the loopback snapshot, writing into its own workspace."""
    sources = []
    for src in config.sources:
        if src.kind == "arxiv":
            sources.append(replace(src, allow_private=True))  # the snapshot's API is on 127.0.0.1
            continue
        ext = "xml" if src.kind == "rss" else "html"
        sources.append(replace(src, url=f"{base}/blogs/{src.name}.{ext}", allow_private=True, min_interval_s=0.0))
    fetch = replace(config.fetch, arxiv_api=f"{base}/api/query?{{}}", arxiv_delay_s=0.0)
    return replace(
        config,
        sources=tuple(sources),
        fetch=fetch,
        workspace=workspace,
        site=replace(config.site, out_dir=workspace / "site"),
        newsletter=replace(config.newsletter, out_dir=workspace / "newsletter"),
    )
