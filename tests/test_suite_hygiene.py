"""The suite itself: a clean environment per test, slow tests opt-in, browser tests skip out loud without chromium.

Each check runs tests/probe_hygiene.py in a child pytest with a chosen environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# The suite checks do not touch a database: they run once, on the SQLite pass.
pytestmark = pytest.mark.skipif(bool(os.environ.get("DIGEST_TEST_PG")), reason="runs on the SQLite pass")


def probe(test: str, **env: str | None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_") or k == "DIGEST_TEST_PG"}
    full["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    for key, value in env.items():
        if value is None:
            full.pop(key, None)
        else:
            full[key] = value
    args = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", f"tests/probe_hygiene.py::{test}"]
    return subprocess.run(args, cwd=ROOT, env=full, capture_output=True, text=True, timeout=120)


def test_exported_digest_variables_do_not_reach_a_test():
    proc = probe(
        "test_sees_no_digest_variables",
        DIGEST_DB="sqlite:////nonexistent/elsewhere.db",
        DIGEST_CONFIG="/nonexistent/digest.toml",
        DIGEST_SMTP_HOST="smtp.example.org",
        DIGEST_SMTP_PASSWORD="hunter2",
        DIGEST_ANYTHING="x",
    )
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr
    kept = probe("test_keeps_the_run_settings", DIGEST_REQUIRE_CORPUS="1", DIGEST_SLOW="1", DIGEST_DB="sqlite://")
    assert kept.returncode == 0 and "1 passed" in kept.stdout, kept.stdout + kept.stderr


def test_slow_tests_are_skipped_by_default_and_run_with_digest_slow():
    skipped = probe("test_marked_slow", DIGEST_SLOW=None)
    assert "1 skipped" in skipped.stdout and "DIGEST_SLOW=1" in skipped.stdout, skipped.stdout
    ran = probe("test_marked_slow", DIGEST_SLOW="1")
    assert "1 passed" in ran.stdout, ran.stdout


def test_browser_tests_skip_with_one_line_without_chromium_and_fail_when_required():
    no_chromium = os.path.dirname(sys.executable)  # a PATH with python but no chromium
    skipped = probe("test_uses_the_browser", PATH=no_chromium, DIGEST_REQUIRE_BROWSER=None)
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout, skipped.stdout + skipped.stderr
    assert "no `chromium` on PATH" in skipped.stdout
    required = probe("test_uses_the_browser", PATH=no_chromium, DIGEST_REQUIRE_BROWSER="1")
    assert required.returncode != 0 and "DIGEST_REQUIRE_BROWSER=1" in required.stdout, required.stdout


def test_with_postgres_starts_a_throwaway_server_and_removes_it():
    """.ci/with-postgres (make test's PostgreSQL pass) runs a command against a fresh server, then cleans up."""
    import glob

    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        pytest.skip("no PostgreSQL binaries in /usr/lib/postgresql/*/bin: make test skips its PostgreSQL pass too")
    query = (
        "import os, sqlalchemy as sa; url = os.environ['DIGEST_TEST_PG']; "
        "print(url); print(sa.create_engine(url).connect().exec_driver_sql('SELECT 6 * 7').scalar())"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["PYTHON"] = sys.executable
    proc = subprocess.run(
        [str(ROOT / ".ci" / "with-postgres"), sys.executable, "-c", query],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "42" and lines[-2].startswith("postgresql+psycopg://digest@127.0.0.1:")
    folder = re.search(r"throwaway, (/\S+?)\)", proc.stdout).group(1)
    assert not os.path.exists(folder)  # the cluster is gone with the command
