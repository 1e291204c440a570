"""Commands that need no embeddings never import torch or sentence-transformers (about 8 s of start-up)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, write_config

HEAVY = ("torch", "sentence_transformers", "transformers", "onnxruntime", "model2vec", "sklearn")

RUN_AND_REPORT = """
import sys
from digest.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    heavy = sorted(m for m in {heavy!r} if m in sys.modules)
    print("HEAVY:" + ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [["status"], ["search", "kv cache"], ["search", "x", "--tag", "kv-cache", "--json"], ["export"], ["--help"]],
    ids=["status", "search", "search-tag-json", "export", "help"],
)
def test_command_does_not_import_heavy_modules(tmp_path, db, args):
    cfg = write_config(tmp_path, "")
    code = RUN_AND_REPORT.format(heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", code, "--config", str(cfg), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = [line for line in out.stderr.splitlines() if line.startswith("HEAVY:")]
    assert report, out.stderr
    assert report[-1] == "HEAVY:", f"{args}: imported {report[-1][6:]}"


def test_the_check_catches_a_heavy_import(tmp_path, db):
    """The same harness reports torch when a command does load the model (the real, slow path is not run)."""
    code = "import sys, digest.embed as e, torch\n" + RUN_AND_REPORT.format(heavy=HEAVY)
    cfg = write_config(tmp_path, "")
    out = subprocess.run(
        [sys.executable, "-c", code, "--config", str(cfg), "status"], cwd=ROOT, capture_output=True, text=True
    )
    assert "HEAVY:torch" in out.stderr
