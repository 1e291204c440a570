"""The hooks shipped under repro/: registered from repro/hooks.toml against the snapshot's sentences, run for real."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import datetime

import pytest

from digest import store
from digest.cli import main
from digest.parse import Entry
from tests.conftest import ROOT, write_config

# The sentences that carry the claims, as the bundled snapshot has them.
ITEMS = [
    Entry(
        key="arxiv:2611.06021",
        arxiv_id="2611.06021",
        kind="paper",
        title="Latent Attention Without Regret",
        url="https://arxiv.org/abs/2611.06021",
        summary="We show that with a 512-dimensional content latent and a 64-dimensional decoupled rotary key, MLA "
        "caches 576 floats per token per layer, 57× less than standard MHA of the same width.",
    ),
    Entry(
        key="arxiv:2610.01334",
        arxiv_id="2610.01334",
        kind="paper",
        title="SDSL: Scaling Laws for Speculative Decoding and the Optimal Draft Model Size",
        url="https://arxiv.org/abs/2610.01334",
        summary="Optimizing the resulting expression yields a closed-form rule for the throughput-optimal draft size, "
        "N* = 2.71×10⁻³ · M + 87M for a target with M parameters, which implies that the draft should be roughly "
        "200× smaller than the target for models in the tens of billions of parameters.",
        code_urls=["https://github.com/sdsl-scaling/sdsl"],
    ),
    Entry(
        key="url:https://deep-dives.example/posts/model-flops-utilization-from-first-principles/",
        title="Model FLOPs Utilization from First Principles",
        url="https://deep-dives.example/posts/model-flops-utilization-from-first-principles/",
        summary="Model FLOPs Utilization answers how much of your GPU's 312 TFLOPS you actually use during training. "
        "Learn how to calculate it from first principles and why 30–70% is the real-world range.",
    ),
    Entry(
        key="arxiv:2611.09783",
        arxiv_id="2611.09783",
        kind="paper",
        title="Asynchronous Continuous Batching",
        url="https://arxiv.org/abs/2611.09783",
        summary="In an open-source engine, the asynchronous design raises the fraction of time the GPU is active from "
        "76% to 99% for an 8B model at batch size 64, which translates into a 22% increase in throughput.",
    ),
]
EXPECTED = {
    "mla-kv-cache-ratio": ("reproduced", 56.889),
    "sdsl-draft-size": ("reproduced", 183.11),
    "mfu-real-world-range": ("reproduced", 52.24),
    "async-batching-gain": ("diverged", 30.26),
    "embed-throughput-cuda": ("skipped", None),
}


@pytest.fixture
def demo_like(tmp_path, db, runner, monkeypatch):
    cfg = write_config(tmp_path, "")
    engine = store.open_engine(db.url)
    store.init_db(engine)
    store.save_entries(
        engine, "snapshot", [e.__class__(**{**e.__dict__, "published": datetime(2026, 11, 20)}) for e in ITEMS]
    )

    def invoke(*args, code=0):
        result = runner.invoke(main, ["--config", str(cfg), *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    invoke("claims")
    return invoke, engine


def test_shipped_hooks_register_and_run(demo_like, db, tmp_path, monkeypatch):
    invoke, engine = demo_like
    out = invoke("repro", "sync", str(ROOT / "repro" / "hooks.toml"))
    assert "5 hooks registered" in out, out
    empty = tmp_path / "no-gpu-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no nvidia-smi: the CUDA hook is skipped
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    invoke("repro", "run", "--all")
    got = {
        name: (verdict, measured)
        for name, verdict, measured in db.rows(
            "SELECT h.name, r.verdict, r.measured FROM reprorun r JOIN reprohook h ON h.id = r.hook_id"
        )
    }
    assert {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in EXPECTED.items()}
    for name, (_, measured) in EXPECTED.items():
        assert got[name][1] == pytest.approx(measured, abs=0.01) if measured is not None else got[name][1] is None
    shown = {v.item.key: set(v.verdicts.values()) for v in store.item_views(engine)}
    assert shown["arxiv:2611.06021"] == {"reproduced"}
    assert shown["arxiv:2611.09783"] == {"diverged"}


@pytest.mark.parametrize("folder", ["mla-kv-cache", "sdsl-draft-size", "mfu-range", "async-batching-speedup"])
def test_shipped_scripts_run_standalone_and_say_what_they_check(folder):
    path = ROOT / "repro" / folder / "run.py"
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert "Checks:" in doc and "Cannot check:" in doc
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=60, check=True)
    assert isinstance(json.loads(out.stdout.strip().splitlines()[-1])["value"], float)


def test_scaffold_writes_an_inert_template(demo_like, db, tmp_path):
    invoke, engine = demo_like
    hostile = Entry(
        key="url:https://evil.example/x",
        title='Pwn """ + __import__("os").system("touch pwned") + """',
        url="https://evil.example/x",
        summary='It is 9.5× faster """; __import__("os").system("touch pwned"); """ {x} \\ end.',
        code_urls=["https://github.com/evil/x"],
        published=datetime(2026, 11, 21),
    )
    store.save_entries(engine, "snapshot", [hostile])
    invoke("claims")
    cid = db.one("SELECT id FROM claim WHERE value = 9.5")
    out = invoke("repro", "scaffold", str(cid), "--root", str(tmp_path))
    script = next((tmp_path / "repro").glob("*/run.py"))
    assert str(script.relative_to(tmp_path)) in out
    text = script.read_text()
    assert "9.5 x speedup" in text and "https://github.com/evil/x" in text and "faster" in text
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.splitlines()[-1]) == {"value": None}
    assert not (tmp_path / "pwned").exists()
    # registered as is, its run is "failed" (no value yet) until measure() is written
    invoke("repro", "add", str(cid), "--script", str(script))
    invoke("repro", "run", "--claim", str(cid), code=1)
    assert db.one("SELECT verdict FROM reprorun") == "failed"
    assert "already exists" in invoke("repro", "scaffold", str(cid), "--root", str(tmp_path), code=1)

    sdsl = db.one("SELECT id FROM claim WHERE value = 200")
    invoke("repro", "scaffold", str(sdsl), "--root", str(tmp_path))
    text = next((tmp_path / "repro").glob("2610-01334*/run.py")).read_text()
    assert "https://github.com/sdsl-scaling/sdsl" in text and "roughly 200× smaller" in text
