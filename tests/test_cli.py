"""Bad input ends with one clear line and a non-zero exit, never a traceback."""

import json
import subprocess
import sys

from digest.cli import main
from tests.conftest import write_config


def test_missing_config(runner, tmp_path):
    result = runner.invoke(main, ["--config", str(tmp_path / "nope.toml"), "init"])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {tmp_path / 'nope.toml'}: config file not found"


def test_malformed_config(runner, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("title = [")
    result = runner.invoke(main, ["--config", str(bad), "init"])
    assert result.exit_code == 1 and "not valid TOML" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unknown_source_kind(runner, tmp_path):
    cfg = write_config(tmp_path, '[[source]]\nname = "x"\nkind = "ftp"\nurl = "https://x.test/"\n')
    result = runner.invoke(main, ["--config", str(cfg), "ingest"])
    assert result.exit_code == 1
    assert "source[0] 'x': field 'kind' must be one of arxiv, rss, html" in result.output


def test_unknown_source_name(runner, tmp_path):
    cfg = write_config(tmp_path, "")
    result = runner.invoke(main, ["--config", str(cfg), "ingest", "--source", "ghost"])
    assert result.exit_code == 1 and "no source named 'ghost'" in result.output


def test_unreachable_host(runner, tmp_path):
    cfg = write_config(
        tmp_path, '[[source]]\nname = "x"\nkind = "rss"\nurl = "http://127.0.0.1:9/f"\nallow_private = true\n'
    )
    result = runner.invoke(main, ["--config", str(cfg), "ingest"])
    assert result.exit_code == 1 and "x (http://127.0.0.1:9/f: cannot connect" in result.output


def test_unknown_cli_option_exits_2():
    proc = subprocess.run([sys.executable, "-m", "digest", "search", "--bogus", "x"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Error: No such option '--bogus'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_week_and_bad_db(runner, tmp_path):
    cfg = write_config(tmp_path, "")
    result = runner.invoke(main, ["--config", str(cfg), "newsletter", "--week", "last-week"])
    assert result.exit_code == 1 and "--week 'last-week': expected an ISO week like 2026-W48" in result.output
    result = runner.invoke(main, ["--config", str(cfg), "--db", "nonsense", "init"])
    assert result.exit_code == 1 and "--db 'nonsense': not a database URL" in result.output


def test_db_from_env(runner, tmp_path, monkeypatch):
    cfg = write_config(tmp_path, "")
    monkeypatch.setenv("DIGEST_DB", f"sqlite:///{tmp_path / 'env.db'}")
    result = runner.invoke(main, ["--config", str(cfg), "init"])
    assert result.exit_code == 0 and (tmp_path / "env.db").exists()


def test_status_before_any_ingest(runner, tmp_path):
    cfg = write_config(tmp_path, "")
    result = runner.invoke(main, ["--config", str(cfg), "status"])
    assert result.exit_code == 0 and "No ingest has run yet." in result.output


def test_missing_config_is_an_error_even_with_a_database_url(runner, tmp_path, monkeypatch):
    """status and search read no config when DIGEST_DB names the database: a wrong --config was ignored."""
    monkeypatch.setenv("DIGEST_DB", f"sqlite:///{tmp_path / 'env.db'}")
    for args in (["status"], ["search", "cache"], ["tags"]):
        result = runner.invoke(main, ["--config", str(tmp_path / "nope.toml"), *args])
        assert result.exit_code == 1, (args, result.output)
        assert result.output.strip() == f"Error: {tmp_path / 'nope.toml'}: config file not found"
    monkeypatch.setenv("DIGEST_CONFIG", str(tmp_path / "gone.toml"))
    result = runner.invoke(main, ["status"])
    assert result.exit_code == 1 and "gone.toml: config file not found" in result.output


def tagged_week(db, tmp_path, model: str = "fake-hash-64"):
    """Two findings tagged kv-cache, published in ISO week 2025-W10 (long before today)."""
    from datetime import datetime

    from digest import store
    from digest.models import ItemTopic, Topic
    from digest.parse import Entry

    engine = store.open_engine(db.url)
    store.init_db(engine)
    entries = [
        Entry(key=f"k{n}", title=f"Cache paper {n}", url=f"https://x.test/{n}", summary="s", kind="post",
              published=datetime(2025, 3, 4 + n))
        for n in range(2)
    ]  # fmt: skip
    store.save_entries(engine, "blog", entries)
    with store.session(engine) as s:
        s.add(Topic(slug="kv-cache", name="KV cache"))
        s.flush()
        for (iid,) in db.rows("SELECT id FROM item"):
            s.add(ItemTopic(item_id=iid, topic_slug="kv-cache", score=0.9))
        s.commit()
    engine.dispose()
    cfg = write_config(tmp_path, "")
    cfg.write_text(cfg.read_text().replace('model = "fake-hash-64"', f'model = "{model}"'))
    return cfg


def test_tags_defaults_to_the_latest_week_with_findings(runner, tmp_path, db):
    cfg = tagged_week(db, tmp_path)
    rows = json.loads(runner.invoke(main, ["--config", str(cfg), "tags", "--json"]).output)
    assert rows == [{"tag": "kv-cache", "count": 2, "this_week": 2, "avg_4w": 0.0, "trend": "up"}]
    table = runner.invoke(main, ["--config", str(cfg), "tags"], env={"COLUMNS": "200"}).output
    assert "2025-W10" in table.splitlines()[0]  # the header names the week shown


def test_unknown_tag_or_item_is_named_before_any_model_loads(runner, tmp_path, db):
    """The configured model does not exist: had it been loaded first, its error would come instead."""
    cfg = tagged_week(db, tmp_path, model="no-such-model-anywhere")
    for args in (["search", "cache", "--tag", "kv-cahce"], ["search", "--semantic", "x", "--any-tag", "nope"]):
        result = runner.invoke(main, ["--config", str(cfg), *args])
        assert result.exit_code == 1, result.output
        assert result.output.startswith("Error: unknown tag ") and "(known: kv-cache;" in result.output
        assert "No results" not in result.output
    result = runner.invoke(main, ["--config", str(cfg), "search", "--semantic", "x", "--source", "blgo"])
    assert result.exit_code == 1 and result.output.startswith("Error: unknown source 'blgo' (known: blog;")
    result = runner.invoke(main, ["--config", str(cfg), "tag", "--explain", "2602.99999"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("Error: item '2602.99999' not found"), result.output
    ok = runner.invoke(main, ["--config", str(cfg), "search", "cache", "--tag", "kv-cache", "--json"])
    assert ok.exit_code == 0 and len(json.loads(ok.output)) == 2


# --- issue #17, point 13: one Error: line for every failure of input or environment ---------------------

import os  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402

import pytest  # noqa: E402

from tests.conftest import ROOT  # noqa: E402

FEED_ITEM = "<item><title>Post {i}</title><link>https://b.test/{i}</link><description>{text}</description></item>"


def feed(n: int, text: str = "A 2.1x speedup on one GPU.") -> bytes:
    items = "".join(FEED_ITEM.format(i=i, text=text) for i in range(n))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>f</title>{items}</channel></rss>'.encode()


def digest(*args: str, fsize: int | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`digest ...` in a child process; `fsize` caps every file it writes (RLIMIT_FSIZE), the way a full
    disk fails a write: at the real write call, with an OSError (EFBIG) there instead of ENOSPC."""

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        preexec_fn=limit if fsize else None,
    )


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    "setting, field",
    [
        ("timeout_s = -1", "timeout_s"),
        ("timeout_s = nan", "timeout_s"),
        ("timeout_s = inf", "timeout_s"),
        ("connect_timeout_s = 0", "connect_timeout_s"),
        ("max_entries = -1", "max_entries"),
        ("max_bytes = -5", "max_bytes"),
        ("retries = 1000", "retries"),
        ("arxiv_page_size = 5000", "arxiv_page_size"),
        ("min_interval_s = -inf", "min_interval_s"),
    ],
)
def test_out_of_range_numbers_are_refused_at_load(runner, tmp_path, setting, field):
    cfg = write_config(tmp_path, "")
    text = re.sub(rf"^\s*{field} = .*$", "", cfg.read_text(), flags=re.MULTILINE)
    cfg.write_text(text.replace("[fetch]", f"[fetch]\n{setting}"))
    result = runner.invoke(main, ["--config", str(cfg), "status"])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"Error: {cfg}: [fetch]: field '{field}' must be a finite number")


def test_config_naming_a_folder(runner, tmp_path):
    result = runner.invoke(main, ["--config", str(tmp_path), "status"])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"Error: {tmp_path}: not a file (--config names the TOML file itself, e.g. data/digest.toml)"
    )


def stored_db(tmp_path, httpserver, n: int = 3):
    """A config and a real database with n entries from a loopback feed."""
    httpserver.expect_request("/small.xml").respond_with_data(feed(n), content_type="application/rss+xml")
    source = (
        f'[[source]]\nname = "small"\nkind = "rss"\nurl = "{httpserver.url_for("/small.xml")}"\nallow_private = true\n'
    )
    cfg = write_config(tmp_path, source)
    db = tmp_path / "real.db"
    proc = digest("--config", str(cfg), "--db", f"sqlite:///{db}", "ingest")
    assert proc.returncode == 0, proc.stderr
    return cfg, db


def test_a_corrupt_or_truncated_sqlite_file_is_one_error_line_and_left_as_it_was(tmp_path, httpserver):
    cfg, db = stored_db(tmp_path, httpserver)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all, just bytes " * 200)
    sqlite3.connect(db).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    for path, reason in ((garbage, "file is not a database"), (truncated, "database disk image is malformed")):
        before = path.read_bytes()
        for command in (["status"], ["search", "speedup"], ["ingest"]):
            line = one_error_line(digest("--config", str(cfg), "--db", f"sqlite:///{path}", *command))
            assert str(path) in line and reason in line, line
        assert path.read_bytes() == before  # nothing written over it


def test_a_zero_byte_database_is_refused_not_recreated(runner, tmp_path):
    cfg = write_config(tmp_path, "")
    empty = tmp_path / "lost.db"
    empty.touch()
    result = runner.invoke(main, ["--config", str(cfg), "--db", f"sqlite:///{empty}", "status"])
    assert result.exit_code == 1
    assert result.output.strip().startswith(f"Error: {empty} is empty (0 bytes), not a Digest database")
    assert empty.stat().st_size == 0
    result = runner.invoke(main, ["--config", str(cfg), "--db", f"sqlite:///{empty}", "init"])  # on purpose: yes
    assert result.exit_code == 0 and empty.stat().st_size > 0


def test_disk_full_for_the_database_is_one_error_line_and_loses_nothing(tmp_path, httpserver):
    cfg, db = stored_db(tmp_path, httpserver)
    big = feed(3000, "Throughput rose 3.4x with a fused kernel. " * 40)  # ~5 MB of rows: past the limit
    httpserver.expect_request("/big.xml").respond_with_data(big, content_type="application/rss+xml")
    cfg.write_text(
        cfg.read_text()
        + f'[[source]]\nname = "big"\nkind = "rss"\nurl = "{httpserver.url_for("/big.xml")}"\nallow_private = true\n'
    )
    sizes = [p.stat().st_size for p in tmp_path.glob("real.db*")]
    proc = digest(
        "--config", str(cfg), "--db", f"sqlite:///{db}", "ingest", "--source", "big", fsize=max(sizes) + 200_000
    )
    line = one_error_line(proc)
    assert "database or disk is full" in line or "disk I/O error" in line, line
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM item WHERE source='small'").fetchone() == (3,)
        assert conn.execute("SELECT count(*) FROM item WHERE source='big'").fetchone() == (0,)  # all or nothing
    proc = digest("--config", str(cfg), "--db", f"sqlite:///{db}", "ingest", "--source", "big")  # room again
    assert proc.returncode == 0, proc.stderr


def test_disk_full_for_the_site_is_one_error_line(tmp_path, httpserver):
    """The site goes to a 48 KiB tmpfs (mounted in a private user and mount namespace: no root needed),
    so the build meets a real ENOSPC at a real write."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rm", "true"], check=False).returncode:
        pytest.skip("needs unshare -rm (user namespaces) for a private tmpfs")
    cfg, db = stored_db(tmp_path, httpserver, n=30)
    out = tmp_path / "site"
    out.mkdir()
    build = [
        sys.executable,
        "-m",
        "digest",
        "--config",
        str(cfg),
        "--db",
        f"sqlite:///{db}",
        "build",
        "--out",
        str(out),
        "--no-search",
    ]
    # After the build, still inside the namespace: list every page without its closing tag (half-written).
    script = (
        f"mount -t tmpfs -o size=48k none {out} || exit 9; {shlex.join(build)}; rc=$?; "
        f"grep -rL --include='*.html' '</html>' {out} | sed 's/^/HALF /'; exit $rc"
    )
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    line = one_error_line(proc)
    assert "No space left on device" in line and str(out) in line, line
    assert "HALF" not in proc.stdout, proc.stdout  # the page being written when the disk filled is removed
    proc = digest("--config", str(cfg), "--db", f"sqlite:///{db}", "build", "--out", str(out), "--no-search")
    assert proc.returncode == 0, proc.stderr  # the same build with room: nothing was left broken
    assert (out / "index.html").exists()


def test_output_piped_into_head_ends_quietly(tmp_path, db):
    """`digest export | head -1`: the reader closes the pipe early; no 'Error: Broken pipe', exit 0."""
    import subprocess
    import sys

    from digest import store
    from digest.parse import Entry

    engine = store.open_engine(db.url)
    store.init_db(engine)
    from datetime import datetime

    entries = [Entry(key=f"k{n}", title=f"Post {n} " + "x" * 500, url=f"https://x.test/{n}", summary="s" * 2000,
                     published=datetime(2026, 11, 1)) for n in range(400)]  # fmt: skip
    store.save_entries(engine, "blog", entries)
    engine.dispose()
    cfg = write_config(tmp_path, "")
    cmd = f"{sys.executable} -m digest --config {cfg} --db {db.url} export | head -c 10"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, cwd=ROOT)
    assert "Error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr


def test_demo_writes_its_own_database_even_with_digest_db_exported(runner, tmp_path, monkeypatch):
    """`digest demo --workspace DIR` with DIGEST_DB pointing elsewhere (a user's real database) must not pour
    the snapshot into that database."""
    elsewhere = tmp_path / "mine.db"
    monkeypatch.setenv("DIGEST_DB", f"sqlite:///{elsewhere}")
    cfg = write_config(tmp_path, "")
    ws = tmp_path / "demo"
    result = runner.invoke(main, ["--config", str(cfg), "demo", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    assert (ws / "digest.db").is_file() and not elsewhere.exists()
