"""Bad input ends with one clear line and a non-zero exit, never a traceback."""

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
