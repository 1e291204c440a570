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
