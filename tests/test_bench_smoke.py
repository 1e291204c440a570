"""Every bench/ script still runs: each at a tiny size, checked to finish and print its figures.

The figures themselves are not asserted (they depend on the machine); what is asserted is that the script runs
against today's schema and code and prints every line its docs/benchmarks.md table is built from.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# The benches use their own SQLite databases: they run once, on the SQLite pass.
pytestmark = pytest.mark.skipif(bool(os.environ.get("DIGEST_TEST_PG")), reason="runs on the SQLite pass")

BENCH = ROOT / "bench"


def test_every_bench_script_has_a_smoke_run():
    scripts = {p.name for p in BENCH.iterdir() if p.is_file() and not p.name.endswith(".py")}
    covered = {name for name, *_ in CASES} | {"embed"}
    assert scripts <= covered, f"bench scripts without a smoke run: {sorted(scripts - covered)}"


def fake_model_config(folder: Path) -> Path:
    """The shipped config with the fake embedder and its workspace in `folder` (no model loads)."""
    text = (ROOT / "data" / "digest.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^model = .*$", 'model = "fake-hash-64"', text)
    text = re.sub(r"(?m)^workspace = .*$", f'workspace = "{folder / "ws"}"', text)
    text = re.sub(r"(?m)^topics_file = .*$", f'topics_file = "{ROOT / "data" / "topics.toml"}"', text)
    cfg = folder / "digest.toml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def run_bench(tmp_path: Path, args: list[str], env: dict[str, str]) -> str:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "BENCH_"))}
    full.update(TMPDIR=str(tmp_path), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **env)
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{args}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


# (script, arguments, environment, lines the output must hold)
CASES = [
    (
        "sanitize",
        [],
        {"BENCH_MB": "0.05"},
        [r"rss: 50,000 nested <div> in a description .* CPU s", r"html source: nested <div> page at the cap",
         r"rss: 15 descriptions of '<' floods"],
    ),
    (
        "search",
        ["--items", "300", "--db", "{tmp}/search/search.db", "--runs", "3", "--cli-runs", "1"],
        {},
        [r"built 300 items", r"tag \(1 tag\) +wall p50", r"text \(1-2 words\) +wall", r"semantic +wall",
         r"hybrid +wall", r"text --json +wall"],
    ),
    (
        "build",
        [],
        {"BENCH_ITEMS": "40", "BENCH_TAGS": "5", "BENCH_SEARCH": "0", "BENCH_DIR": "{tmp}"},
        [r"full build: .* s wall", r"rebuild, no change: .* s wall", r"rebuild, \+10 items: .* s wall", r"peak RSS"],
    ),
    (
        "ingest",
        [],
        {"BENCH_ARXIV_PAGES": "2", "BENCH_ARXIV_PAGE_SIZE": "20", "BENCH_FEEDS": "3", "BENCH_FEED_ENTRIES": "5",
         "BENCH_FRESH": "1"},
        [r"fresh process x 1: median", r"first run of this process: 2 pages x 20: 40 papers",
         r"RSS +3 feeds x 5: 15 posts", r"304 +rerun of 3 feeds: .*untouched: True", r"arXiv again, same process",
         r"peak +max RSS"],
    ),
    (
        "claims",
        [],
        {"BENCH_DOCS": "30"},
        [r"claims: 30 abstracts in .* abstracts/s", r"claims ledger, first extraction", r"claims ledger, rerun",
         r"repro run overhead: .* \(verdict reproduced\)"],
    ),
    (
        "cluster",
        ["--sizes", "200"],
        {},
        [r"cluster +200 vectors", r"assign 1,000 new items to \d+ topics", r"similarity \+ selection"],
    ),
    (
        "recommend",
        ["--items", "300", "--library", "6", "--runs", "1"],
        {},
        [r"built 300 findings, library 6", r"recommend in-process .* precision@10", r"similar in-process",
         r"CLI `digest recommend --limit 10` whole call", r"CLI `digest similar \S+` whole call"],
    ),
    (
        "demo",
        [],
        {"DIGEST_CONFIG": "{tmp}/digest.toml"},
        [r"^ingest .* s wall", r"entries from 8 sources", r"^load model", r"^tag ", r"^claims ", r"^build ",
         r"^search index", r"^newsletter "],
    ),
]  # fmt: skip


@pytest.mark.parametrize("name, args, env, expected", CASES, ids=[c[0] for c in CASES])
def test_bench_runs_at_a_tiny_size(tmp_path, name, args, env, expected):
    fake_model_config(tmp_path)
    (tmp_path / "search").mkdir()
    fill = {"tmp": str(tmp_path)}
    out = run_bench(
        tmp_path, [str(BENCH / name), *(a.format(**fill) for a in args)], {k: v.format(**fill) for k, v in env.items()}
    )
    for pattern in expected:
        assert re.search(pattern, out, re.M), f"bench/{name}: no line matching {pattern!r} in:\n{out}"


@pytest.mark.slow
def test_bench_embed_runs_at_a_tiny_size(tmp_path):
    """The PyTorch path only (the ONNX and static paths first build their models: minutes)."""
    args = ["--backends", "torch", "--n", "4", "--n-torch", "4", "--max-tokens", "32", "--workspace", str(tmp_path)]
    out = run_bench(tmp_path, [str(BENCH / "embed"), *args], {})
    assert re.search(r"4 synthetic abstracts", out) and re.search(r"\s32\s+[\d.]+ docs/s", out), out


def test_search_bench_data_is_searchable_through_the_cli(tmp_path):
    """The bench's synthetic findings are real findings to Digest: the CLI finds them by tag and by word."""
    db = tmp_path / "search" / "search.db"
    db.parent.mkdir()
    run_bench(
        tmp_path, [str(BENCH / "search"), "--items", "120", "--db", str(db), "--runs", "1", "--cli-runs", "1"], {}
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["PYTHONPATH"] = str(ROOT)
    found = subprocess.run(
        [sys.executable, "-m", "digest", "--db", f"sqlite:///{db}", "search", "--tag", "tag-00", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert '"title"' in found.stdout
