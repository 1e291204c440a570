"""The ingest wing: sources -> fetch -> parse -> store, politely, incrementally, one run at a time."""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine

from digest import store
from digest.config import Config, SourceConfig
from digest.errors import FetchError
from digest.fetch import (
    ClientError,
    DeferredError,
    Fetcher,
    GoneError,
    Validators,
    arxiv_page_url,
    load_arxiv,
    warm_up,
)
from digest.gcpause import paused_gc
from digest.lock import run_lock
from digest.models import SourceRun, utcnow
from digest.normalize import clean_text
from digest.parse import parse_arxiv_page, parse_feed, parse_html

log = logging.getLogger("digest")
Progress = Callable[[str, int, int], None]  # (label, done, total)


@dataclass
class SourceReport:
    source: str
    status: str  # ok | warning | not-modified | broken | incomplete | deferred | disabled
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str = ""
    duration_s: float = 0.0


def ingest(
    engine: Engine, config: Config, only: str | None = None, progress: Progress | None = None
) -> list[SourceReport]:
    """Fetch every source (arXiv first) under the ingest lock; one report per source, recorded as a SourceRun."""
    warm = warm_up()
    with run_lock(engine, config.workspace, "ingest"):
        return _ingest(engine, config, only, progress, warm)


def _ingest(
    engine: Engine, config: Config, only: str | None, progress: Progress | None, warm: threading.Thread
) -> list[SourceReport]:
    sources = [config.source(only)] if only else sorted(config.sources, key=lambda s: s.kind != "arxiv")
    store.sync_sources(engine, config.sources)
    disabled = store.disabled_sources(engine)
    run_id = uuid.uuid4().hex[:12]
    reports: list[SourceReport] = []
    queue = deque(sources)
    requeued: set[str] = set()  # sources moved to the end of the run by a short Retry-After
    if any(s.kind == "arxiv" for s in sources):
        load_arxiv()  # the first page's URL needs it: import it while the TLS context still loads
    warm.join()
    with Fetcher(config.fetch, holds=store.host_holds(engine)) as fetcher:
        while queue:
            source = queue.popleft()
            if progress:
                progress(f"ingest {source.name}", len(reports), len(sources))
            started = time.monotonic()
            wait_ok = config.fetch.retry_after_wait_s if source.name in requeued else 0.0
            try:
                if source.name in disabled:
                    report = SourceReport(source.name, "disabled", error=disabled[source.name])
                elif source.kind == "arxiv":
                    with paused_gc():  # 10^4 new objects a page, no cycles (a feed's parser makes some: not there)
                        report = _ingest_arxiv(engine, config, source, fetcher, run_id, wait_ok)
                else:
                    report = _ingest_feed(engine, config, source, fetcher, wait_ok)
            except GoneError as exc:
                fix = f"fix its url or remove it, then `digest sources enable {source.name}`"
                reason = f"{exc}: source disabled ({fix})"
                store.disable_source(engine, source.name, reason)
                report = SourceReport(source.name, "disabled", error=reason)
            except DeferredError as exc:
                if source.name not in requeued and exc.wait_s <= config.fetch.retry_after_wait_s:
                    requeued.add(source.name)
                    queue.append(source)  # other hosts carry on; this one is retried at the end
                    log.info("%s: deferred to the end of the run (%s)", source.name, exc)
                    continue
                report = SourceReport(source.name, "deferred", error=str(exc))
            except FetchError as exc:
                report = SourceReport(source.name, "broken", error=str(exc))
                state = store.get_fetch_state(engine, source.name)
                state.last_error, state.last_fetch_at = str(exc), utcnow()
                store.save_fetch_state(engine, state)
            report.duration_s = round(time.monotonic() - started, 3)
            store.record_run(engine, SourceRun(run_id=run_id, source=source.name, **_run_fields(report)))
            log.info(
                "%s: %s new=%d updated=%d unchanged=%d %.2fs %s",
                source.name,
                report.status,
                report.new,
                report.updated,
                report.unchanged,
                report.duration_s,
                report.error,
            )
            reports.append(report)
        store.save_host_holds(engine, fetcher.holds())
    if progress:
        progress("ingest", len(sources), len(sources))
    store.relink_coverage(engine)
    return reports


def _ingest_feed(
    engine: Engine, config: Config, source: SourceConfig, fetcher: Fetcher, wait_ok: float = 0.0
) -> SourceReport:
    state = store.get_fetch_state(engine, source.name)
    url = store.source_url(engine, source.name, source.url)
    _wait_for_host(fetcher, url, wait_ok)
    response = fetcher.get(source, url, Validators(state.etag, state.last_modified))
    if response.not_modified:
        return SourceReport(source.name, "not-modified")  # no parse, no writes but the run report
    if source.kind == "rss":
        result = parse_feed(response.body, response.headers, response.url, config.fetch.max_entries)
    else:
        result = parse_html(response.body, source.selectors, response.url, config.fetch.max_entries)
    state.last_status, state.last_fetch_at, state.url = response.status, utcnow(), url
    state.etag, state.last_modified = response.validators.etag, response.validators.last_modified
    state.last_error = result.warning
    counts = store.save_entries(engine, source.name, result.entries, state)  # validators commit with entries
    if response.permanent_url:
        store.update_source_url(engine, source.name, response.permanent_url, config_url=source.url)
    status = "warning" if result.warning else "ok"
    return SourceReport(source.name, status, counts.new, counts.updated, counts.unchanged, result.warning)


def _ingest_arxiv(
    engine: Engine, config: Config, source: SourceConfig, fetcher: Fetcher, run_id: str, wait_ok: float = 0.0
) -> SourceReport:
    """Page newest-revision-first down to the last complete run's cursor minus an overlap window; every entry
    of every page goes to the store, which dedupes by arXiv id and version. Any gap makes the run incomplete.

    A strict `updated > cursor` test loses papers: arXiv lists a paper only once it is announced, so a new
    paper can carry an `updated` older than (or equal to) a revision the last run already saw. The overlap
    (`arxiv_overlap_days`) re-reads that window each run; the store turns what it holds into `unchanged`."""
    cfg = config.fetch
    cursor = store.get_cursor(engine, source.name)
    floor = None if cursor is None else cursor - timedelta(days=cfg.arxiv_overlap_days)
    limit = source.max_results or cfg.arxiv_max_results
    # Guarded like any source: a redirect or DNS answer pointing at a private address is refused unless the
    # source sets allow_private = true (an arXiv mirror on the lab network, a test server on loopback).
    api = SourceConfig(name=source.name, kind="arxiv", allow_private=source.allow_private)
    report = SourceReport(source.name, "ok")
    newest = cursor
    start = 0
    problem = ""
    with PageWriter(engine, source.name) as writer:
        while start < limit:
            url = arxiv_page_url(cfg, source.query, start, min(cfg.arxiv_page_size, limit - start))
            try:
                page = _arxiv_page(fetcher, api, url, cfg.arxiv_delay_s, wait_ok)
            except (GoneError, DeferredError):
                raise
            except ClientError as exc:  # a query arXiv refuses: broken until the config changes, with its reason
                raise FetchError(f"arXiv refused the query: {arxiv_error_message(exc.body) or exc}") from None
            except FetchError as exc:
                problem = f"{exc} (page at start={start})"
                break
            if not page.entries:
                if start == 0 and page.total == 0:
                    break  # a query with no results at all
                if start < page.total or start == 0:
                    problem = f"arXiv returned an empty page at start={start} of {page.total} results"
                break
            writer.put(page.entries)  # committed on the writer thread, one transaction per page; dedupe there
            stamps = [e.updated or e.published for e in page.entries]
            if newest is None or max(stamps) > newest:
                newest = max(stamps)
            start += len(page.entries)
            if (floor is not None and min(stamps) < floor) or start >= page.total:
                break  # below the overlap window of what the last complete run stored, or the end of the results
    counts = writer.counts  # every page is committed (or its error raised) once the `with` block is left
    report.new, report.updated, report.unchanged = counts.new, counts.updated, counts.unchanged
    if problem:
        report.status, report.error = "incomplete", f"{problem}: cursor not advanced, next run retries"
    else:
        store.save_cursor(engine, source.name, newest, run_id)
    return report


SWITCH_INTERVAL_S = 0.001


class PageWriter:
    """Commits pages on a second thread while the next one is fetched and parsed: sqlite3, psycopg and lxml
    release the GIL, so the two cores overlap. A page reaches the writer in chunks of `chunk` entries, written
    as they come and committed together, in order, one transaction per page: writing starts before a whole
    page's rows are ready and the run's last write is short, without the cost of more commits. Leaving the
    `with` block waits for every queued chunk and re-raises the first error, so a caller saves its cursor only
    after all of its pages are stored."""

    def __init__(self, engine: Engine, source: str, depth: int = 4, chunk: int = 500):
        self.engine, self.source, self.chunk = engine, source, chunk
        self.counts = store.UpsertCounts()
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"digest-writer-{source}", daemon=True)

    def __enter__(self) -> PageWriter:
        # Each sqlite3 call hands the GIL back; with both threads busy, taking it again waits up to the switch
        # interval (5 ms by default), a dozen times a page. 1 ms keeps the writer close to SQLite's own speed.
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._interval, SWITCH_INTERVAL_S))
        self._thread.start()
        return self

    def put(self, entries: list) -> None:
        """Queue one page, chunk by chunk (blocks while `depth` chunks wait); a write that already failed is
        raised here. The rows' values, ready for the driver, are computed on whichever thread has less to do:
        here while chunks wait for the writer, on the writer when it has caught up."""
        for i in range(0, len(entries), self.chunk):
            if self._error is not None:
                raise self._error
            part = entries[i : i + self.chunk]
            rows = store.new_item_rows(self.engine, self.source, part) if self._queue.qsize() else None
            self._queue.put((part, rows, i + self.chunk >= len(entries)))

    def __exit__(self, exc_type, exc, tb) -> None:
        self._queue.put(None)
        self._thread.join()
        sys.setswitchinterval(self._interval)
        if self._error is not None and exc is None:
            raise self._error

    def _run(self) -> None:
        chunk = self._queue.get()
        while chunk is not None:
            with store.session(self.engine) as s:  # one page: its chunks, then its commit
                page = store.UpsertCounts()
                while chunk is not None:
                    part, rows, last = chunk
                    if self._error is None:  # after a failed page nothing is written: the queue is drained
                        try:
                            page.add(store.upsert_entries(s, self.source, part, rows))
                            if last:
                                s.commit()
                                self.counts.add(page)
                        except BaseException as exc:  # handed to the ingest thread, which raises it
                            self._error = exc
                    chunk = self._queue.get()
                    if last:
                        break


def _arxiv_page(fetcher: Fetcher, api: SourceConfig, url: str, delay_s: float, wait_ok: float):
    """One API page on the shared arXiv clock; an empty page is asked for once more before giving up."""
    page = None
    for _ in range(2):
        _wait_for_host(fetcher, url, wait_ok)
        response = fetcher.get(api, url, min_interval_s=delay_s)
        page = parse_arxiv_page(response.body)
        if page.entries or page.total == 0:
            return page
    return page


def arxiv_error_message(body: bytes) -> str:
    """arXiv's own explanation of a refused query: the API answers HTTP 400 with an Atom feed whose one entry,
    titled "Error", says what is wrong ("incorrect id format for 1234"); '' when the body is not that."""
    from lxml import etree

    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    except (etree.XMLSyntaxError, ValueError):
        return ""
    atom = "{http://www.w3.org/2005/Atom}"
    for entry in root.iterfind(f"{atom}entry"):
        text = entry.findtext(f"{atom}summary") or entry.findtext(f"{atom}title") or ""
        if text.strip():
            return clean_text(" ".join(text.split()), 300)
    return ""


def _wait_for_host(fetcher: Fetcher, url: str, wait_ok: float) -> None:
    wait = fetcher.blocked_for(url)
    if 0 < wait <= wait_ok:
        time.sleep(wait)


def _run_fields(report: SourceReport) -> dict:
    return {
        "status": report.status,
        "new": report.new,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "error": report.error[:1000],
        "duration_s": report.duration_s,
    }
