"""Stable claim ids and reproduction hooks, run as real subprocesses through the CLI against a real database."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path

import pytest

from digest import store
from digest.cli import main
from digest.parse import Entry
from tests.conftest import write_config

PAPER = Entry(
    key="arxiv:2611.00001",
    title="Latent attention caches less",
    url="https://arxiv.org/abs/2611.00001",
    summary="MLA caches 576 floats per token, 57× less than standard MHA. Decoding is 5.76× faster.",
    kind="paper",
    arxiv_id="2611.00001",
    published=datetime(2026, 11, 20),
    code_urls=["https://github.com/example/mla"],
)


@pytest.fixture
def env(tmp_path, db, runner):
    """A config, a database holding one paper, its claims extracted; returns (invoke, engine, tmp_path)."""
    cfg = write_config(tmp_path, "")
    engine = store.open_engine(db.url)
    store.init_db(engine)
    store.save_entries(engine, "arxiv-test", [PAPER])

    def invoke(*args, code=0):
        result = runner.invoke(main, ["--config", str(cfg), *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    invoke("claims")
    return invoke, engine, tmp_path


def claim_id(db, value: float) -> int:
    return db.one("SELECT id FROM claim WHERE value = :v AND vanished = :f", v=value, f=False)


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


# --------------------------------------------------------------------------- stable claims


def test_hook_survives_claims_rerun_and_text_edits(env, db):
    invoke, engine, tmp = env
    cid = claim_id(db, 57)
    ok = script(tmp, "ok.py", "print('{\"value\": 56.9}')")
    invoke("repro", "add", str(cid), "--script", str(ok))
    invoke("repro", "run", "--all")
    invoke("claims")
    invoke("claims")
    assert claim_id(db, 57) == cid
    assert db.one("SELECT claim_id FROM reprohook") == cid
    assert db.one("SELECT count(*) FROM claim") == 2

    # a new sentence before it shifts its span: same id, new span
    edited = Entry(**{**PAPER.__dict__, "summary": "We add a cache. " + PAPER.summary})
    store.save_entries(engine, "arxiv-test", [edited])
    invoke("claims")
    assert claim_id(db, 57) == cid
    assert db.one("SELECT start FROM claim WHERE id = :i", i=cid) > 0

    # the number disappears: the unhooked claim goes, the hooked one stays (vanished) with its history
    gone = Entry(**{**PAPER.__dict__, "summary": "MLA caches less. Decoding is 6.1× faster."})
    store.save_entries(engine, "arxiv-test", [gone])
    invoke("claims")
    assert db.one("SELECT vanished FROM claim WHERE id = :i", i=cid) in (1, True)
    assert db.one("SELECT count(*) FROM claim WHERE value = 5.76") == 0
    view = store.item_views(engine)[0]
    assert [c.value for c in view.claims] == [6.1]
    assert "reproduced" in invoke("repro", "show", str(cid))
    assert "no longer in the item's text" in invoke("repro", "list")


# --------------------------------------------------------------------------- verdicts with real subprocesses


def test_every_verdict(env, db, tmp_path, monkeypatch):
    invoke, engine, tmp = env
    cid = claim_id(db, 57)
    scripts = {
        "good": 'print("working"); print(\'{"value": 56.89}\')',
        "bad": 'import json; print(json.dumps({"value": 32.0}))',
        "crash": "import sys; print('{\"value\": 57}'); sys.exit(3)",
        "silent": 'print("no json here")',
    }
    for name, body in scripts.items():
        invoke("repro", "add", str(cid), "--script", str(script(tmp, f"{name}.py", body)), "--name", name)
    out = invoke("repro", "run", "--all", code=1)
    verdicts = dict(db.rows("SELECT h.name, r.verdict FROM reprorun r JOIN reprohook h ON h.id = r.hook_id"))
    assert verdicts == {"good": "reproduced", "bad": "diverged", "crash": "failed", "silent": "failed"}
    assert "exit status 3" in out and "no {" in out
    measured = dict(db.rows("SELECT h.name, r.measured FROM reprorun r JOIN reprohook h ON h.id = r.hook_id"))
    assert measured["good"] == pytest.approx(56.89) and measured["bad"] == 32.0 and measured["crash"] is None
    assert db.one("SELECT stdout FROM reprorun WHERE verdict = 'reproduced'").startswith("working")
    # the latest run per claim is the verdict the site and search show
    assert store.item_views(engine)[0].verdicts == {cid: "failed"}
    invoke("repro", "run", "good")
    view = store.item_views(engine)[0]
    assert view.verdicts == {cid: "reproduced"}
    assert view.runs[cid].measured == pytest.approx(56.89) and view.runs[cid].claimed == 57
    history = invoke("repro", "show", str(cid))
    assert history.count("hook ") >= 5 and "diverged" in history


def test_tolerance_absolute_and_range(env, db, tmp_path):
    invoke, _, tmp = env
    cid = claim_id(db, 5.76)
    near = script(tmp, "near.py", "print('{\"value\": 6.2}')")
    invoke("repro", "add", str(cid), "--script", str(near), "--tolerance", "0.5", "--absolute", "--name", "abs")
    invoke("repro", "add", str(cid), "--script", str(near), "--tolerance", "0.05", "--name", "rel")
    invoke("repro", "run", "--claim", str(cid))
    verdicts = dict(db.rows("SELECT h.name, r.verdict FROM reprorun r JOIN reprohook h ON h.id = r.hook_id"))
    assert verdicts == {"abs": "reproduced", "rel": "diverged"}


def test_timeout_kills_child_and_grandchild(env, db, tmp_path):
    invoke, _, tmp = env
    cid = claim_id(db, 57)
    pids = tmp / "pids.txt"
    hang = script(
        tmp,
        "hang.py",
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        open({str(pids)!r}, "w").write(f"{{child.pid}} {{__import__('os').getpid()}}")
        print("started", flush=True)
        time.sleep(300)
        """,
    )
    invoke("repro", "add", str(cid), "--script", str(hang), "--timeout", "1.5")
    out = invoke("repro", "run", "--all", code=1)
    assert "timed out after 1.5 s" in out  # killed at its timeout, not after its 300 s sleep
    assert db.one("SELECT verdict FROM reprorun") == "failed"
    assert "started" in db.one("SELECT stdout FROM reprorun")
    grandchild, child = (int(p) for p in pids.read_text().split())
    deadline = time.monotonic() + 5
    while (alive(grandchild) or alive(child)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child) and not alive(grandchild)


def test_skipped_without_cuda_and_runs_with_it(env, db, tmp_path, monkeypatch):
    invoke, _, tmp = env
    cid = claim_id(db, 57)
    gpu = script(tmp, "gpu.py", "print('{\"value\": 57}')")
    invoke("repro", "add", str(cid), "--script", str(gpu), "--requires", "cuda")
    bare = tmp / "bin-none"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    out = invoke("repro", "run", "--all")
    assert "skipped" in out and "no nvidia-smi" in out
    assert db.one("SELECT verdict FROM reprorun") == "skipped"
    assert db.one("SELECT run_dir FROM reprorun") == ""

    # an nvidia-smi that lists a GPU: the hook runs
    smi_dir = tmp / "bin-gpu"
    smi_dir.mkdir()
    smi = smi_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-test)'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(smi_dir))
    invoke("repro", "run", "--all")
    assert db.one("SELECT verdict FROM reprorun ORDER BY id DESC") == "reproduced"
    assert "H100" in json.loads(db.one("SELECT environment FROM reprorun ORDER BY id DESC"))["hardware"]


def test_run_has_its_own_folder_and_environment(env, db, tmp_path):
    invoke, _, tmp = env
    cid = claim_id(db, 57)
    probe = script(
        tmp,
        "probe.py",
        """
        import json, os
        open("written.txt", "w").write("x")
        print(json.dumps({"value": float(os.environ["DIGEST_CLAIMED"]), "cwd": os.getcwd()}))
        """,
    )
    invoke("repro", "add", str(cid), "--script", str(probe))
    invoke("repro", "run", "1")
    invoke("repro", "run", "1")
    dirs = [Path(d) for (d,) in db.rows("SELECT run_dir FROM reprorun ORDER BY id")]
    assert len(set(dirs)) == 2
    for d in dirs:
        assert d.is_relative_to(tmp / "ws" / "repro" / "runs")
        assert (d / "written.txt").exists() and '"value": 57.0' in (d / "stdout.txt").read_text()
    assert db.one("SELECT verdict FROM reprorun ORDER BY id DESC") == "reproduced"


def test_output_is_capped(env, db, tmp_path):
    invoke, _, tmp = env
    cid = claim_id(db, 57)
    noisy = script(tmp, "noisy.py", 'import sys\nfor _ in range(200000): sys.stdout.write("y" * 99 + "\\n")\n')
    invoke("repro", "add", str(cid), "--script", str(noisy))
    out = invoke("repro", "run", "--all", code=1)
    assert "output over" in out
    assert len(db.one("SELECT stdout FROM reprorun")) < 20_000


def test_record_external_measurement(env, db):
    invoke, *_ = env
    cid = claim_id(db, 57)
    invoke("repro", "add", str(cid), "--command", "python -c pass", "--name", "ext")
    out = invoke("repro", "record", "ext", "--value", "57.3", "--note", "measured on H100")
    assert "reproduced" in out
    assert db.one("SELECT source FROM reprorun") == "record"
    assert "H100" in db.one("SELECT note FROM reprorun")


def test_sync_from_hooks_file(env, db, tmp_path):
    invoke, _, tmp = env
    repro_dir = tmp / "repro"
    (repro_dir / "mla").mkdir(parents=True)
    (repro_dir / "mla" / "run.py").write_text("print('{\"value\": 56.9}')")
    hooks = repro_dir / "hooks.toml"
    hooks.write_text(
        textwrap.dedent(
            """
            [[hook]]
            name = "mla"
            item = "2611.00001"
            value = 57
            unit = "x"
            script = "repro/mla/run.py"
            [[hook]]
            name = "bench"
            claimed = 100
            unit = "docs/s"
            script = "repro/mla/run.py"
            [[hook]]
            name = "missing"
            item = "2611.99999"
            value = 1
            unit = "x"
            script = "repro/mla/run.py"
            """
        )
    )
    out = invoke("repro", "sync", str(hooks))
    assert "2 hooks registered" in out
    invoke("repro", "sync", str(hooks))  # idempotent
    assert db.one("SELECT count(*) FROM reprohook") == 2
    assert db.one("SELECT claim_id FROM reprohook WHERE name = 'mla'") == claim_id(db, 57)
    invoke("repro", "run", "--all", code=0)
    assert dict(db.rows("SELECT h.name, r.verdict FROM reprorun r JOIN reprohook h ON h.id = r.hook_id")) == {
        "mla": "reproduced",
        "bench": "diverged",
    }
    assert "mla" in invoke("repro", "list")


@pytest.mark.parametrize(
    "args, message",
    [
        (["repro", "add", "999", "--command", "true"], "claim 999: no such claim"),
        (["repro", "add", "1"], "give --command"),
        (["repro", "add", "1", "--command", "echo 'unclosed"], "No closing quotation"),
        (["repro", "run"], "exactly one of"),
        (["repro", "run", "nope"], "hook 'nope': no such hook"),
        (["repro", "show", "999"], "claim 999"),
        (["repro", "sync", "nowhere.toml"], "hooks file not found"),
    ],
)
def test_bad_input_is_one_line(env, args, message):
    invoke, *_ = env
    out = invoke(*args, code=1)
    assert message in out and "Traceback" not in out


def test_repeated_numbers_get_distinct_stable_keys(env, db):
    invoke, engine, _ = env
    twice = Entry(**{**PAPER.__dict__, "summary": "Prefill is 2x faster. Decode is also 2x faster on H100."})
    store.save_entries(engine, "arxiv-test", [twice])
    invoke("claims")
    first = db.rows("SELECT id, key FROM claim WHERE value = 2 ORDER BY start")
    assert len(first) == 2 and first[0][1] != first[1][1]
    assert first[0][1].endswith("|1") and first[1][1].endswith("|2")
    invoke("claims")
    assert db.rows("SELECT id, key FROM claim WHERE value = 2 ORDER BY start") == first


def test_at_least_is_a_floor(env, db, tmp_path):
    invoke, _, tmp = env
    cid = claim_id(db, 57)
    for name, value in (("above", 90.0), ("just-below", 55.0), ("far-below", 40.0)):
        body = f"print('{{\"value\": {value}}}')"
        invoke("repro", "add", str(cid), "--script", str(script(tmp, f"{name}.py", body)), "--at-least", "--name", name)
    invoke("repro", "run", "--all")
    verdicts = dict(db.rows("SELECT h.name, r.verdict FROM reprorun r JOIN reprohook h ON h.id = r.hook_id"))
    assert verdicts == {"above": "reproduced", "just-below": "reproduced", "far-below": "diverged"}
    assert "≥" in invoke("repro", "list")
    out = invoke("repro", "add", str(cid), "--command", "true", "--absolute", "--at-least", code=1)
    assert "pick one" in out


def test_a_broken_hook_does_not_stop_the_others(env, db, tmp_path):
    from digest.models import ReproHook

    invoke, engine, tmp = env
    cid = claim_id(db, 57)
    # stored by an older version or edited in the DB: a command that no longer parses
    store.save_hook(engine, ReproHook(claim_id=cid, name="unparsable", command="echo 'unclosed", workdir=str(tmp)))
    invoke("repro", "add", str(cid), "--command", "/nonexistent/tool --flag", "--name", "missing-binary")
    invoke(
        "repro", "add", str(cid), "--script", str(script(tmp, "fine.py", "print('{\"value\": 57}')")), "--name", "fine"
    )
    out = invoke("repro", "run", "--all", code=1)
    verdicts = dict(db.rows("SELECT h.name, r.verdict FROM reprorun r JOIN reprohook h ON h.id = r.hook_id"))
    assert verdicts == {"unparsable": "failed", "missing-binary": "failed", "fine": "reproduced"}
    assert "No closing quotation" in out and "exit status 127" in out
    assert "3 hooks run, 2 failed" in out


def test_background_process_left_by_a_finished_hook_is_killed(env, db, tmp_path):
    invoke, _, tmp = env
    cid = claim_id(db, 57)
    pid_file = tmp / "bg.pid"
    body = f"""
        import subprocess, sys
        bg = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        open({str(pid_file)!r}, "w").write(str(bg.pid))
        print('{{"value": 57}}')
        """
    invoke("repro", "add", str(cid), "--script", str(script(tmp, "daemon.py", body)))
    invoke("repro", "run", "--all")
    assert db.one("SELECT verdict FROM reprorun") == "reproduced"
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


# --------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    "stdout, value",
    [
        ('{"value": 1}\nnoise\n{"value": 2.5, "unit": "x"}\ntrailing text\n', 2.5),
        ('{"value": 3}\n{"other": 1}\n', 3.0),  # a later JSON line without "value" does not count
        ('{"value": true}\n', None),  # booleans are not numbers here
        ('{"value": NaN}\n', None),
        ('{"value": "57"}\n', None),
        ("[1, 2]\n{broken\n", None),
        ("", None),
    ],
)
def test_parse_measured(stdout, value):
    from digest.repro import parse_measured

    assert parse_measured(stdout) == value


@pytest.mark.parametrize(
    "measured, claimed, hi, tol, kind, verdict",
    [
        (57.0, 57.0, None, 0.0, "relative", "reproduced"),
        (54.2, 57.0, None, 0.05, "relative", "reproduced"),
        (54.1, 57.0, None, 0.05, "relative", "diverged"),
        (-27.5, -26.8, None, 0.05, "relative", "reproduced"),  # negative claims widen the right way
        (0.60, 0.55, None, 0.05, "absolute", "reproduced"),
        (0.61, 0.55, None, 0.05, "absolute", "diverged"),
        (50.0, 30.0, 70.0, 0.0, "relative", "reproduced"),
        (73.0, 30.0, 70.0, 0.05, "relative", "reproduced"),
        (74.0, 30.0, 70.0, 0.05, "relative", "diverged"),
        (28.6, 30.0, 70.0, 0.05, "relative", "reproduced"),
        (28.4, 30.0, 70.0, 0.05, "relative", "diverged"),
        (1e9, 14200.0, None, 0.05, "at-least", "reproduced"),
        (13000.0, 14200.0, None, 0.05, "at-least", "diverged"),
    ],
)
def test_judge(measured, claimed, hi, tol, kind, verdict):
    from digest.repro import judge

    assert judge(measured, claimed, hi, tol, kind) == verdict


def test_command_argv(tmp_path):
    from digest.errors import DigestError
    from digest.repro import command_argv

    (tmp_path / "repro").mkdir()
    (tmp_path / "repro" / "run.py").write_text("")
    assert command_argv("", "repro/run.py", tmp_path) == [sys.executable, str(tmp_path / "repro" / "run.py")]
    argv = command_argv("python3 {script} --n 3 'two words'", "repro/run.py", tmp_path)
    assert argv == [sys.executable, str(tmp_path / "repro" / "run.py"), "--n", "3", "two words"]
    assert command_argv("sh -c 'echo $HOME; rm x'", "", tmp_path) == ["sh", "-c", "echo $HOME; rm x"]  # one argv
    with pytest.raises(DigestError, match="closing quotation"):
        command_argv("echo 'open", "", tmp_path)


def test_sync_moves_a_hook_to_the_claim_still_in_the_text(env, db, tmp_path):
    invoke, engine, tmp = env
    (tmp / "repro" / "mla").mkdir(parents=True)
    (tmp / "repro" / "mla" / "run.py").write_text("print('{\"value\": 56.9}')")
    hooks = tmp / "repro" / "hooks.toml"
    hooks.write_text(
        '[[hook]]\nname = "mla"\nitem = "2611.00001"\nvalue = 57\nunit = "x"\nscript = "repro/mla/run.py"\n'
    )
    invoke("repro", "sync", str(hooks))
    old = claim_id(db, 57)
    invoke("repro", "run", "mla")
    moved = Entry(**{**PAPER.__dict__, "title": "A 57× smaller cache", "summary": "Decoding is 5.76× faster."})
    store.save_entries(engine, "arxiv-test", [moved])
    invoke("claims")
    new = claim_id(db, 57)
    assert new != old and db.one("SELECT vanished FROM claim WHERE id = :i", i=old) in (1, True)
    invoke("repro", "sync", str(hooks))
    assert db.one("SELECT claim_id FROM reprohook WHERE name = 'mla'") == new
    invoke("repro", "run", "mla")
    assert store.item_views(engine)[0].verdicts == {new: "reproduced"}


LEAKED_BEFORE = {  # what the deny-list let through (issue #17): a hook sees none of it now
    "MY_SECRETKEY": "k",
    "APP_SECRETS": "s",
    "PGPASSWORD": "pw",
    "DB_PASS": "pw",
    "GITHUB_PAT": "ghp_x",
    "DIGEST_SMTP_PASSWORD": "hunter2",
    "HF_TOKEN": "hf_secret",
    "DIGEST_KEEP_ME": "not named",
}


def test_hooks_see_an_allow_listed_environment_plus_the_variables_they_name(env, db, tmp_path, monkeypatch):
    invoke, _, tmp = env
    for name, value in LEAKED_BEFORE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HF_HOME", "/models")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("LANG", "C.UTF-8")
    probe = script(
        tmp,
        "env_probe.py",
        """
        import json, os
        print(json.dumps({"value": 57.0, "seen": dict(os.environ)}))
        """,
    )
    invoke("repro", "add", str(claim_id(db, 57)), "--script", str(probe), "--env", "HF_HOME")
    invoke("repro", "run", "1")
    out = Path(db.one("SELECT run_dir FROM reprorun ORDER BY id DESC")) / "stdout.txt"
    seen = json.loads(out.read_text().splitlines()[-1])["seen"]
    assert not set(LEAKED_BEFORE) & set(seen), set(LEAKED_BEFORE) & set(seen)
    assert os.environ["DIGEST_DB"] and "DIGEST_DB" not in seen  # the database URL (and its password) stays out
    assert not any(value in seen.values() for value in LEAKED_BEFORE.values())
    assert {"PATH", "HOME", "LANG", "LC_ALL", "HF_HOME", "DIGEST_CLAIMED", "DIGEST_RUN_DIR"} <= set(seen)
    assert seen["HF_HOME"] == "/models"
    assert set(seen) <= {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "USER", "LOGNAME", "HF_HOME",
                         "PYTHONUNBUFFERED", "DIGEST_CLAIMED", "DIGEST_CLAIM_UNIT", "DIGEST_CLAIM_ID",
                         "DIGEST_RUN_DIR", "LC_CTYPE"}  # fmt: skip
    bad = invoke("repro", "add", str(claim_id(db, 57)), "--script", str(probe), "--env", "A=B", code=1)
    assert "Error: --env: 'A=B' is not an environment variable name" in bad


def test_a_double_forked_setsid_daemon_dies_with_the_run(env, db, tmp_path):
    """fork, setsid, fork again: the grandchild leaves the hook's session and process group, and (without a
    subreaper) is reparented to init. It must still die when the run ends."""
    invoke, _, tmp = env
    pid_file = tmp / "daemon.pid"
    body = f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                open({str(pid_file)!r} + ".tmp", "w").write(str(os.getpid()))
                os.rename({str(pid_file)!r} + ".tmp", {str(pid_file)!r})
                time.sleep(300)
            os._exit(0)
        while not os.path.exists({str(pid_file)!r}):
            time.sleep(0.01)
        print('{{"value": 57}}')
        """
    invoke("repro", "add", str(claim_id(db, 57)), "--script", str(script(tmp, "daemon.py", body)))
    try:
        invoke("repro", "run", "--all")
        pid = int(pid_file.read_text())
        assert not alive(pid)  # gone when `repro run` returns: no waiting
        assert db.one("SELECT verdict FROM reprorun") == "reproduced"
    finally:
        if pid_file.exists() and alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), 9)


def test_a_hook_writing_2_gib_puts_no_more_than_the_cap_on_disk(env, db, tmp_path):
    from digest import repro

    invoke, _, tmp = env
    body = """
        import os, sys
        block = b"y" * (1 << 20)
        for _ in range(2048):  # 2 GiB, as fast as the pipe (or the disk) takes it
            sys.stdout.buffer.write(block)
            sys.stderr.buffer.write(block[:4096])
        """
    invoke("repro", "add", str(claim_id(db, 57)), "--script", str(script(tmp, "flood.py", body)))
    out = invoke("repro", "run", "--all", code=1)
    assert f"output over {repro.MAX_OUTPUT_BYTES} bytes" in out
    folder = Path(db.one("SELECT run_dir FROM reprorun"))
    on_disk = (folder / "stdout.txt").stat().st_size + (folder / "stderr.txt").stat().st_size
    assert on_disk <= repro.MAX_OUTPUT_BYTES


def test_a_process_that_keeps_forking_and_exiting_dies_with_the_run(env, db, tmp_path):
    """A hopper changes its pid every few ms (fork, parent exits) after leaving the session: the scope's kill
    passes repeat until no member is left, so whichever pid it holds at the end dies too."""
    invoke, _, tmp = env
    hops = tmp / "hops"
    hops.mkdir()
    body = f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            while True:
                open(os.path.join({str(hops)!r}, str(os.getpid())), "w").close()
                time.sleep(0.002)
                if os.fork() != 0:
                    os._exit(0)
        while len(os.listdir({str(hops)!r})) < 20:
            time.sleep(0.01)
        print('{{"value": 57}}')
        """
    invoke("repro", "add", str(claim_id(db, 57)), "--script", str(script(tmp, "hopper.py", body)))
    try:
        invoke("repro", "run", "--all")
        pids = [int(p.name) for p in hops.iterdir()]
        assert len(pids) >= 20 and not [p for p in pids if alive(p)]
    finally:
        for p in hops.iterdir():
            if alive(int(p.name)):
                os.kill(int(p.name), 9)
