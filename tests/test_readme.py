"""Every README example runs as written on the demo data.

The demo is built once per session from the bundled snapshot (fake embedder, so no model loads) into a
temporary folder laid out like the repository: `workspace/demo/` for the demo, `repro/` and `tests/data/`
beside it. Each ```sh block of README.md that holds a `digest` command then runs there in bash (`set -eo
pipefail`), with `DIGEST_DB` pointing at the demo database as README's "After the demo" says. A block that
needs the network, SMTP or a PostgreSQL server is marked in README with `<!-- readme-test: skip: REASON -->`
on the line before its fence and is skipped with that reason.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
SKIP_RE = re.compile(r"<!--\s*readme-test:\s*skip:\s*(.+?)\s*-->")
FENCE_RE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    heading: str
    line: int
    lang: str
    commands: tuple[str, ...]
    skip: str | None


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of README that run `digest`: sh blocks whole, console blocks by their `$ ` lines."""
    blocks: list[Block] = []
    lines = text.splitlines()
    heading, i = "top", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("# ").strip()
        fence = FENCE_RE.match(line)
        if not fence:
            i += 1
            continue
        start, lang, body = i, fence.group(1), []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        if lang == "console":
            body = [b[2:] for b in body if b.startswith("$ ")]
        elif lang not in ("sh", "bash", "shell"):
            continue
        if not any(re.match(r"\s*digest\s", b) for b in body):
            continue
        marker = SKIP_RE.search(lines[start - 1]) if start else None
        blocks.append(Block(heading, start + 1, lang, tuple(body), marker.group(1) if marker else None))
    return blocks


BLOCKS = readme_blocks(README)
# The examples use the demo's SQLite database whatever the pass: run them once, on the SQLite pass.
pytestmark = pytest.mark.skipif(bool(os.environ.get("DIGEST_TEST_PG")), reason="README examples run on the SQLite pass")


def test_readme_blocks_found():
    """The parser sees README's examples (guards against a test that silently runs nothing)."""
    assert len([b for b in BLOCKS if b.skip is None]) >= 5
    # `digest ingest` with the default config would fetch from arxiv.org: such blocks must be marked.
    assert all(b.skip for b in BLOCKS if any(re.match(r"digest ingest\b", c) for c in b.commands))


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory) -> Path:
    """A folder laid out like a checkout after `make demo` (fake embedder), and a `digest` on PATH."""
    home = tmp_path_factory.mktemp("readme")
    config_text = (ROOT / "data" / "digest.toml").read_text(encoding="utf-8")
    config_text = re.sub(r"(?m)^model = .*$", 'model = "fake-hash-64"', config_text)
    config_text = re.sub(r"(?m)^workspace = .*$", 'workspace = "../workspace"', config_text)
    (home / "data").mkdir()
    (home / "data" / "digest.toml").write_text(config_text, encoding="utf-8")
    shutil.copy(ROOT / "data" / "topics.toml", home / "data" / "topics.toml")
    for other in (ROOT / "data").iterdir():  # the rest of data/ (labelled sets, snapshot) as it is, read-only use
        if not (home / "data" / other.name).exists():
            (home / "data" / other.name).symlink_to(other)
    shutil.copytree(ROOT / "repro", home / "repro", ignore=shutil.ignore_patterns("model-fp16", "__pycache__"))
    (home / "tests").mkdir()
    (home / "tests" / "data").symlink_to(ROOT / "tests" / "data")
    args = ["--config", str(home / "data" / "digest.toml"), "demo"]
    result = CliRunner().invoke(main, args, catch_exceptions=False, env=_env_without_digest())
    assert result.exit_code == 0, result.output
    assert (home / "workspace" / "demo" / "digest.db").is_file()
    (home / "demo-output.txt").write_text(result.output, encoding="utf-8")
    shim = home / "bin" / "digest"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m digest "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return home


def _env_without_digest() -> dict[str, str | None]:
    return {k: None for k in os.environ if k.startswith("DIGEST_")}


def _run_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env["PATH"] = f"{home / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["DIGEST_DB"] = "sqlite:///workspace/demo/digest.db"  # README: "Point it at the demo database"
    return env


def _block_id(block: Block) -> str:
    return f"L{block.line}-" + re.sub(r"\W+", "-", block.heading).strip("-")


@pytest.mark.parametrize("block", BLOCKS, ids=[_block_id(b) for b in BLOCKS])
def test_readme_example_runs(block: Block, demo_home: Path):
    if block.skip:
        pytest.skip(f"README line {block.line}: {block.skip}")
    missing = [tool for tool in ("jq",) if any(f"| {tool}" in c for c in block.commands) and not shutil.which(tool)]
    if missing:
        pytest.skip(f"README line {block.line}: needs {', '.join(missing)}, not installed here")
    script = "set -eo pipefail\n" + "\n".join(block.commands) + "\n"
    proc = subprocess.run(
        ["bash", "-c", script], cwd=demo_home, env=_run_env(demo_home), capture_output=True, text=True, timeout=300
    )
    output = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"README line {block.line} failed:\n{script}\n{output}"
    assert "Traceback" not in proc.stderr


def test_paths_named_in_readme_exist_after_the_demo(demo_home: Path):
    """`workspace/demo/...` paths and site paths such as `weeks/2026-w48.html` that README names are real."""
    demo = demo_home / "workspace" / "demo"
    named = set(re.findall(r"`(workspace/demo/[^`\s]*)`", README))
    assert named, "README names no demo path"
    for path in named:
        assert (demo_home / path).exists(), path
    for page in re.findall(r"`((?:weeks|tags|items)/[\w.-]+\.(?:html|atom))`", README):
        if "<" not in page:
            assert (demo / "site" / page).exists(), page
    for top in ("feed.atom", "feed.json", "claims.json", "sitemap.xml", "index.html"):
        assert (demo / "site" / top).is_file(), top


def test_demo_says_each_stage_as_it_starts(demo_home: Path):
    """`make demo` is never silent for minutes: one line per pipeline stage, in order, then where things are."""
    lines = (demo_home / "demo-output.txt").read_text(encoding="utf-8").splitlines()
    stages = [line.split(":")[0] for line in lines if line.startswith("== ")]
    assert stages == ["== ingest", "== tag", "== claims", "== repro", "== build", "== newsletter"], lines
    assert lines[-2].startswith("Site: ") and lines[-1].startswith("Newsletter: ")


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return found


def test_links_in_readme_resolve():
    """Every relative link of README (and of the docs it links) names a file that exists, and a heading that does."""
    pages = {ROOT / "README.md"} | {ROOT / "docs" / p.name for p in (ROOT / "docs").glob("*.md")}
    for page in sorted(pages):
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not checked here
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            assert file.exists(), f"{page.name}: link to missing {target}"
            if anchor and file.suffix == ".md":
                assert anchor in _anchors(file.read_text(encoding="utf-8")), f"{page.name}: no heading for {target}"


def test_configuration_example_loads(tmp_path):
    """README's TOML example is a valid config as written, and with its commented-out settings switched on."""
    from digest.config import load_config

    block = re.search(r"```toml\n(.*?)```", README, re.S).group(1)
    (tmp_path / "mytheme").mkdir()  # the example's theme = "../mytheme"
    folder = tmp_path / "conf"
    folder.mkdir()
    shutil.copy(ROOT / "data" / "topics.toml", folder / "topics.toml")
    for text in (block, re.sub(r"(?m)^# (\w+ = )", r"\1", block)):
        (folder / "digest.toml").write_text(text, encoding="utf-8")
        config = load_config(folder / "digest.toml")
        assert [s.kind for s in config.sources] == ["arxiv", "rss", "html"]
