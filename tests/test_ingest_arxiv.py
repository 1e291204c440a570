"""arXiv through the shared httpx client: paging, the 3-second clock, incomplete runs, versions, cursor."""

from __future__ import annotations

import gc
import time

from werkzeug.wrappers import Response

from digest import store
from digest.config import load_config
from digest.ingest import ingest
from tests.conftest import write_config

HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
    'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom">'
    "<title>arXiv Query</title><opensearch:totalResults>{total}</opensearch:totalResults>"
    "<opensearch:startIndex>{start}</opensearch:startIndex><opensearch:itemsPerPage>{size}</opensearch:itemsPerPage>"
)


def paper(arxiv_id: str, version: int = 1, day: int = 1, title: str = "", summary: str = "") -> str:
    return (
        f"<entry><id>http://arxiv.org/abs/{arxiv_id}v{version}</id>"
        f"<updated>2026-11-{day:02d}T10:00:00Z</updated><published>2026-11-01T10:00:00Z</published>"
        f"<title>{title or 'Paper ' + arxiv_id}</title><summary>{summary or 'About ' + arxiv_id}</summary>"
        f"<author><name>A. Author</name></author><category term='cs.CL'/></entry>"
    )


def feed(entries: list[str], total: int | None = None, start: int = 0) -> str:
    total = len(entries) if total is None else total
    return HEAD.format(total=total, start=start, size=len(entries)) + "".join(entries) + "</feed>"


class FakeArxiv:
    """Serves a result set page by page like export.arxiv.org, and notes when each request came."""

    def __init__(self, entries: list[str], clock=time.monotonic):
        self.clock = clock
        self.entries = entries
        self.empty_at: set[int] = set()
        self.fail_at: dict[int, int] = {}
        self.times: list[float] = []
        self.starts: list[int] = []
        self.collecting: list[bool] = []  # the ingest process's cyclic GC state at each request (same process)

    def __call__(self, request):
        self.times.append(self.clock())
        self.collecting.append(gc.isenabled())
        start = int(request.args.get("start", 0))
        size = int(request.args.get("max_results", 100))
        self.starts.append(start)
        if start in self.fail_at:
            return Response("busy", status=self.fail_at[start])
        page = [] if start in self.empty_at else self.entries[start : start + size]
        return Response(feed(page, total=len(self.entries), start=start), content_type="application/atom+xml")


def setup(httpserver, tmp_path, api: FakeArxiv, delay_s: float = 0.0, sources: str = ""):
    httpserver.expect_request("/api/query").respond_with_handler(api)
    cfg = write_config(
        tmp_path,
        sources
        or """
        [[source]]
        name = "arxiv-a"
        kind = "arxiv"
        allow_private = true
        query = "cat:cs.CL"
        """,
        fetch=f'arxiv_api = "{httpserver.url_for("/api/query")}?{{}}"\narxiv_page_size = 2\nretries = 0',
    )
    cfg.write_text(cfg.read_text().replace("arxiv_delay_s = 0.0", f"arxiv_delay_s = {delay_s}"))
    return cfg


def run_ingest(cfg, db):
    engine = store.open_engine(db.url)
    store.init_db(engine)
    try:
        return {r.source: r for r in ingest(engine, load_config(cfg))}
    finally:
        engine.dispose()


def test_pages_through_results(httpserver, tmp_path, db):
    api = FakeArxiv([paper(f"2611.{i:05d}", day=20 - i) for i in range(5)])
    report = run_ingest(setup(httpserver, tmp_path, api), db)["arxiv-a"]
    assert report.status == "ok" and report.new == 5
    assert api.starts == [0, 2, 4]
    assert db.one("SELECT count(*) FROM item WHERE kind='paper'") == 5
    assert api.collecting == [False] * 3 and gc.isenabled()  # paused for the run (digest.gcpause), then back


def test_one_request_every_delay_across_all_arxiv_sources(httpserver, tmp_path, db, fetch_clock):
    clock = fetch_clock  # the client's own clock: no real waiting, no load flakiness
    api = FakeArxiv([paper(f"2611.{i:05d}", day=20 - i) for i in range(3)], clock=clock.monotonic)
    sources = "".join(
        f"""
        [[source]]
        name = "arxiv-{n}"
        kind = "arxiv"
        allow_private = true
        query = "cat:cs.{n}"
        """
        for n in ("a", "b")
    )
    run_ingest(setup(httpserver, tmp_path, api, delay_s=30.0, sources=sources), db)
    assert len(api.times) == 4  # two pages per source
    gaps = [b - a for a, b in zip(api.times, api.times[1:], strict=False)]
    # Requests are stamped on arrival, a few ms after the client reads its clock: 29.9, not 30.
    assert min(gaps) >= 29.9, gaps  # the clock is shared: no burst when the second source starts
    assert clock.slept < 3 * 30.0 + 1  # and no more waiting than the three gaps need
    assert db.one("SELECT count(*) FROM item") == 3  # arXiv keys are global: a paper from any source is one row


def test_empty_page_mid_pagination_is_incomplete_and_keeps_the_cursor(httpserver, tmp_path, db):
    api = FakeArxiv([paper(f"2611.{i:05d}", day=20 - i) for i in range(5)])
    api.empty_at = {2}
    cfg = setup(httpserver, tmp_path, api)
    report = run_ingest(cfg, db)["arxiv-a"]
    assert report.status == "incomplete"
    assert "empty page at start=2 of 5" in report.error and report.new == 2
    assert api.starts == [0, 2, 2]  # the empty page was asked for once more
    assert db.one("SELECT count(*) FROM ingestcursor") == 0
    assert db.one("SELECT status FROM sourcerun WHERE source='arxiv-a'") == "incomplete"
    api.empty_at = set()
    report = run_ingest(cfg, db)["arxiv-a"]  # the next run fills the gap
    assert report.status == "ok" and report.new == 3
    assert db.one("SELECT count(*) FROM item") == 5


def test_5xx_mid_pagination_is_incomplete_not_zero_papers(httpserver, tmp_path, db):
    api = FakeArxiv([paper(f"2611.{i:05d}", day=20 - i) for i in range(5)])
    api.fail_at = {4: 503}
    report = run_ingest(setup(httpserver, tmp_path, api), db)["arxiv-a"]
    assert report.status == "incomplete" and "HTTP 503" in report.error and "start=4" in report.error
    assert db.one("SELECT count(*) FROM ingestcursor") == 0
    api.fail_at = {0: 500}
    report = run_ingest(setup(httpserver, tmp_path, api), db)["arxiv-a"]
    assert report.status == "incomplete"


def test_a_query_with_no_results_is_complete(httpserver, tmp_path, db):
    report = run_ingest(setup(httpserver, tmp_path, FakeArxiv([])), db)["arxiv-a"]
    assert report.status == "ok" and report.new == 0


def test_v2_updates_v1_and_keeps_the_history(httpserver, tmp_path, db):
    api = FakeArxiv([paper("2611.00001", 1, day=2, title="Draft title")])
    cfg = setup(httpserver, tmp_path, api)
    assert run_ingest(cfg, db)["arxiv-a"].new == 1
    api.entries = [paper("2611.00001", 2, day=9, title="Final title")]
    report = run_ingest(cfg, db)["arxiv-a"]
    assert report.updated == 1 and report.new == 0
    rows = db.rows("SELECT key, title, arxiv_version, versions FROM item")
    assert len(rows) == 1
    key, title, version, versions = rows[0]
    assert (key, title, version) == ("arxiv:2611.00001", "Final title", 2)
    assert '"version": 1' in versions and '"version": 2' in versions
    api.entries = [paper("2611.00001", 1, day=20, title="Draft title")]  # a stale v1 showing up late
    run_ingest(cfg, db)
    assert db.one("SELECT title FROM item") == "Final title"


def test_old_style_ids_are_normalised(httpserver, tmp_path, db):
    api = FakeArxiv([paper("math.ca/0611800", 1, day=3), paper("hep-th/9901001", 2, day=2)])
    run_ingest(setup(httpserver, tmp_path, api), db)
    keys = {r[0] for r in db.rows("SELECT key FROM item")}
    assert keys == {"arxiv:math.CA/0611800", "arxiv:hep-th/9901001"}


def test_incremental_stops_below_the_overlap_window_of_the_last_cursor(httpserver, tmp_path, db):
    api = FakeArxiv([paper(f"2611.{i:05d}", day=10 - i) for i in range(6)])  # days 10..5
    cfg = setup(httpserver, tmp_path, api)
    cfg.write_text(cfg.read_text().replace("retries = 0", "retries = 0\narxiv_overlap_days = 1.5"))
    assert run_ingest(cfg, db)["arxiv-a"].new == 6
    api.starts.clear()
    api.entries = [paper("2611.10000", day=20), paper("2611.10001", day=19), *api.entries]
    report = run_ingest(cfg, db)["arxiv-a"]
    assert (report.new, report.unchanged) == (2, 4)
    assert api.starts == [0, 2, 4]  # the third page reached day 8, below the cursor (day 10) minus 1.5 days


def late_announced(api: FakeArxiv) -> list[str]:
    """Run 1 saw a v2 (day 12) and older papers; then arXiv announces papers whose `updated` is older than
    that v2, or equal to it: they sort below the cursor, some between papers already stored."""
    return [
        paper("2611.00001", 2, day=12),
        paper("2611.20000", day=12),  # a tie with the cursor
        paper("2611.20001", day=11),
        paper("2611.00002", day=10),
        paper("2611.20002", day=9),
        paper("2611.00003", day=8),
        paper("2611.20003", day=8),  # a tie with a stored paper
        paper("2611.20004", day=7),
    ]


def test_papers_announced_with_older_timestamps_are_not_lost(httpserver, tmp_path, db):
    api = FakeArxiv([paper("2611.00001", 2, day=12), paper("2611.00002", day=10), paper("2611.00003", day=8)])
    cfg = setup(httpserver, tmp_path, api)
    assert run_ingest(cfg, db)["arxiv-a"].new == 3  # cursor: day 12
    api.entries = late_announced(api)
    report = run_ingest(cfg, db)["arxiv-a"]
    assert report.status == "ok" and (report.new, report.updated, report.unchanged) == (5, 0, 3)
    ids = [r[0] for r in db.rows("SELECT arxiv_id FROM item ORDER BY arxiv_id")]
    assert ids == ["2611.00001", "2611.00002", "2611.00003", *(f"2611.2000{i}" for i in range(5))]
    report = run_ingest(cfg, db)["arxiv-a"]  # a rerun over the same window writes nothing
    assert (report.new, report.updated, report.unchanged) == (0, 0, 8)
    assert db.one("SELECT count(*) FROM item") == 8


def test_out_of_order_timestamps_inside_a_page_are_all_stored(httpserver, tmp_path, db):
    api = FakeArxiv([paper("2611.00001", day=12)])
    cfg = setup(httpserver, tmp_path, api)
    run_ingest(cfg, db)
    # arXiv sorts by lastUpdatedDate, but a result set that shifts while paging puts older stamps first.
    api.entries = [paper("2611.30000", day=9), paper("2611.30001", day=13), paper("2611.00001", day=12),
                   paper("2611.30002", day=11)]  # fmt: skip
    report = run_ingest(cfg, db)["arxiv-a"]
    assert (report.new, report.unchanged) == (3, 1)
    assert db.one("SELECT count(*) FROM item") == 4


def refuse_insert(engine, db, arxiv_id: str) -> None:
    """A trigger named `refuse` that makes inserting this paper fail, on SQLite or PostgreSQL."""
    refuse = f"new.arxiv_id = '{arxiv_id}'"
    with engine.begin() as conn:
        if db.dialect == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER refuse BEFORE INSERT ON item WHEN {refuse} BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:
            conn.exec_driver_sql(
                f"CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF {refuse} THEN RAISE EXCEPTION 'refused';"
                " END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql("CREATE TRIGGER refuse BEFORE INSERT ON item FOR EACH ROW EXECUTE FUNCTION refuse()")


def test_a_failed_page_write_stops_the_run_and_keeps_the_cursor(httpserver, tmp_path, db):
    import pytest
    from sqlalchemy.exc import DatabaseError

    api = FakeArxiv([paper(f"2611.{i:05d}", day=20 - i) for i in range(6)])
    cfg = setup(httpserver, tmp_path, api)
    engine = store.open_engine(db.url)
    store.init_db(engine)
    refuse_insert(engine, db, "2611.00003")  # on the second page, which the writer thread commits
    with pytest.raises(DatabaseError, match="refused"):
        ingest(engine, load_config(cfg))
    assert db.rows("SELECT arxiv_id FROM item ORDER BY arxiv_id") == [("2611.00000",), ("2611.00001",)]
    assert db.one("SELECT count(*) FROM ingestcursor") == 0  # the next run starts again from the newest paper
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse" if db.dialect == "sqlite" else "DROP TRIGGER refuse ON item")
    engine.dispose()
    assert run_ingest(cfg, db)["arxiv-a"].new == 4
    assert db.one("SELECT count(*) FROM item") == 6 and db.one("SELECT count(*) FROM ingestcursor") == 1


def test_a_paper_twice_in_one_page_is_one_row_with_the_newest_version(httpserver, tmp_path, db):
    api = FakeArxiv(
        [
            paper("2611.00001", 1, day=3, title="Draft title"),
            paper("2611.00002", 1, day=2),
            paper("2611.00001", 2, day=9, title="Final title"),  # the results shifted while paging
        ]
    )
    cfg = setup(httpserver, tmp_path, api)
    cfg.write_text(cfg.read_text().replace("arxiv_page_size = 2", "arxiv_page_size = 3"))
    report = run_ingest(cfg, db)["arxiv-a"]
    assert report.status == "ok" and report.new == 2 and report.updated == 1
    rows = db.rows("SELECT title, arxiv_version, versions FROM item WHERE arxiv_id = '2611.00001'")
    assert len(rows) == 1 and rows[0][:2] == ("Final title", 2)
    assert '"version": 1' in rows[0][2] and '"version": 2' in rows[0][2]
    assert db.one("SELECT count(*) FROM item") == 2


def test_the_page_writer_writes_a_page_in_chunks_and_commits_it_whole(db):
    import pytest
    from sqlalchemy.exc import DatabaseError

    from digest.ingest import PageWriter
    from digest.parse import parse_arxiv_page

    entries = parse_arxiv_page(feed([paper(f"2611.{i:05d}", day=20 - i) for i in range(6)]).encode()).entries
    engine = store.open_engine(db.url)
    store.init_db(engine)
    with PageWriter(engine, "arxiv-a", chunk=2) as writer:
        writer.put(entries[:3])  # chunks of 2 and 1
        writer.put(entries[:1])  # a repeat: unchanged
    assert (writer.counts.new, writer.counts.unchanged) == (3, 1)
    refuse_insert(engine, db, "2611.00005")
    with pytest.raises(DatabaseError, match="refused"), PageWriter(engine, "arxiv-a", chunk=1) as writer:
        writer.put(entries[3:4])  # a page of its own: committed
        writer.put(entries[4:])  # 00004 written, then 00005 refused in the same page: both roll back
        writer.put(entries[:1])  # nothing after a failed page is written
    engine.dispose()
    assert db.rows("SELECT arxiv_id FROM item ORDER BY arxiv_id") == [(f"2611.{i:05d}",) for i in range(4)]


def test_300_papers_announced_late_over_ten_runs_are_all_stored(httpserver, tmp_path, db):
    """arXiv lists a paper once announced, sorted by `updated` (its submission, for a v1): with announcements
    lagging submissions by up to 4 days, each run finds new papers older than what the last run stored, and
    v2s of earlier papers newer than all of them. A strict cursor lost 15 of 300 in a run like this."""
    import random
    from datetime import datetime, timedelta

    rng = random.Random(6)
    start = datetime(2026, 10, 1)
    submitted = sorted(start + timedelta(hours=rng.uniform(0, 24 * 30)) for _ in range(300))
    lag = [timedelta(hours=rng.uniform(0, 96)) for _ in submitted]

    def entry(n: int, version: int, when: datetime) -> str:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        return paper(f"2610.{n:05d}", version).replace("2026-11-01T10:00:00Z</updated>", f"{stamp}</updated>")

    api = FakeArxiv([])
    cfg = setup(httpserver, tmp_path, api)
    cfg.write_text(cfg.read_text().replace("arxiv_page_size = 2", "arxiv_page_size = 50\narxiv_max_results = 300"))
    for run in range(1, 11):
        now = start + timedelta(days=3 * run + 4)
        listed = []
        for n, s in enumerate(submitted):  # one row per paper: its latest announced version
            if n % 25 == 0 and s + timedelta(days=2) + lag[n] <= now:
                listed.append((s + timedelta(days=2), n, 2))  # a v2, newer than most new papers
            elif s + lag[n] <= now:
                listed.append((s, n, 1))
        listed.sort(reverse=True)  # newest revision first, as arXiv's lastUpdatedDate order
        api.entries = [entry(n, v, s) for s, n, v in listed]
        assert run_ingest(cfg, db)["arxiv-a"].status == "ok"
    assert db.one("SELECT count(*) FROM item") == 300
    assert db.one("SELECT count(*) FROM item WHERE arxiv_version = 2") == 12


ARXIV_ERROR = (  # the shape of arXiv's documented error answer (API user manual, "Errors"): HTTP 400, one entry
    '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
    "<title>ArXiv Query: search_query=&amp;id_list=1234.12345</title>"
    "<entry><id>http://arxiv.org/api/errors#incorrect_id_format_for_1234.12345</id><title>Error</title>"
    "<summary>incorrect id format for 1234.12345</summary></entry></feed>"
)


def test_a_query_arxiv_refuses_is_broken_with_arxivs_reason(httpserver, tmp_path, db):
    """HTTP 400 is not a gap to retry every run: the source is broken until its query changes, and the report
    says what arXiv said."""
    api = FakeArxiv([paper("2611.00001")])
    cfg = setup(httpserver, tmp_path, api)
    httpserver.clear()
    httpserver.expect_request("/api/query").respond_with_data(
        ARXIV_ERROR, status=400, content_type="application/atom+xml"
    )
    report = run_ingest(cfg, db)["arxiv-a"]
    assert report.status == "broken", report
    assert "arXiv refused the query: incorrect id format for 1234.12345" in report.error
    assert db.one("SELECT count(*) FROM ingestcursor") == 0
