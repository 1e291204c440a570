"""Reproduction hooks: run a user-registered command in its own folder, read its measured value, judge the claim.

Only commands a user registered (`digest repro add`, or a hooks file they point at) ever run; nothing from
feed text is executed. A run gets a fresh working folder under the workspace, a wall-clock timeout, an
output cap enforced as it is written, an allow-listed environment, and a kill scope (digest.scope) that ends
every process it started, double-forked daemons included, when it finishes or overruns.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import selectors
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from digest.errors import DigestError
from digest.scope import KillScope

VERDICTS = ("reproduced", "diverged", "failed", "skipped")
REQUIREMENTS = ("", "cuda")
STORED_BYTES = 16_000  # stdout/stderr kept in the DB (the tail: the JSON line is at the end)
MAX_OUTPUT_BYTES = 10_000_000  # a run writing more than this to stdout+stderr is killed
KILL_GRACE_S = 2.0


@dataclass
class Outcome:
    """What one run produced, before it is stored."""

    verdict: str
    measured: float | None = None
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    note: str = ""


# ----------------------------------------------------------------------------- pure parts


def parse_measured(stdout: str) -> float | None:
    """The value of the last JSON line on stdout shaped like {"value": number}; None when there is none."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "value" in obj:
            value = obj["value"]
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                return float(value)
            return None
    return None


def judge(measured: float, claimed: float, claimed_hi: float | None, tolerance: float, kind: str) -> str:
    """reproduced when measured lies within tolerance of the claimed value (or of the claimed range);
    kind "at-least" treats the claim as a floor ("at least as fast as claimed", relative tolerance below it)."""
    lo, hi = (claimed, claimed_hi) if claimed_hi is not None else (claimed, claimed)
    lo, hi = min(lo, hi), max(lo, hi)
    if kind == "at-least":
        return "reproduced" if measured >= lo - tolerance * abs(lo) else "diverged"
    if kind == "absolute":
        lo, hi = lo - tolerance, hi + tolerance
    else:
        lo, hi = lo - tolerance * abs(lo), hi + tolerance * abs(hi)
    return "reproduced" if lo <= measured <= hi else "diverged"


def describe(measured: float | None, claimed: float | None, claimed_hi: float | None, unit: str) -> str:
    """'measured 56.9 x vs claimed 57 x' for notes and listings."""
    if measured is None:
        return ""
    want = "" if claimed is None else _num(claimed) + (f"–{_num(claimed_hi)}" if claimed_hi is not None else "")
    unit = f" {unit}" if unit else ""
    return f"measured {_num(measured)}{unit}" + (f" vs claimed {want}{unit}" if want else "")


def _num(x: float) -> str:
    """56.89, 0.00271, 14,200 (never 1.4e+04)."""
    return f"{x:,.0f}" if abs(x) >= 10_000 else f"{x:.4g}"


def command_argv(command: str, script: str, workdir: Path) -> list[str]:
    """The argv a hook runs: shlex-split, `{script}` filled in, a leading `python` is this interpreter,
    and relative paths that exist under the hook's workdir made absolute (the run's cwd is its own folder)."""
    if not command.strip():
        command = "python {script}"
    script_path = str((workdir / script).resolve()) if script else ""
    try:
        argv = [a.replace("{script}", script_path) for a in shlex.split(command)]
    except ValueError as exc:
        raise DigestError(f"hook command {command!r}: {exc}") from None
    if not argv:
        raise DigestError("hook command is empty")
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    for i, arg in enumerate(argv[1:], 1):
        if arg and not arg.startswith("-") and not os.path.isabs(arg) and (workdir / arg).exists():
            argv[i] = str((workdir / arg).resolve())
    return argv


# ----------------------------------------------------------------------------- hardware


def has_cuda() -> tuple[bool, str]:
    """CUDA present? torch is asked only if something already imported it; else `nvidia-smi -L` on PATH."""
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                return True, torch.cuda.get_device_name(0)
        except Exception:  # a broken CUDA install counts as none
            pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False, "no nvidia-smi on PATH"
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"nvidia-smi failed: {exc}"
    gpus = [line for line in out.stdout.splitlines() if line.startswith("GPU")]
    if out.returncode != 0 or not gpus:
        return False, "nvidia-smi lists no GPU"
    return True, gpus[0]


def hardware(requires: str) -> tuple[bool, str]:
    """Whether this machine meets a hook's requirement, and what it has."""
    if requires == "cuda":
        return has_cuda()
    if requires:
        raise DigestError(f"requires {requires!r}: unknown hardware requirement (expected one of: cuda)")
    return True, platform.machine()


def environment(requires: str, found: str) -> dict:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "requires": requires,
        "hardware": found,
    }


# ----------------------------------------------------------------------------- running


def run_process(
    argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float, max_bytes: int | None = None
) -> tuple[int | None, bool, str]:
    """Run argv in its own session and kill scope (digest.scope), its output piped through this process into
    files in cwd: at most `max_bytes` (default MAX_OUTPUT_BYTES) of stdout+stderr ever reach the disk, and the
    run is killed the moment it writes more. On timeout, overflow or exit every process it started is killed,
    double-forked daemons included.

    Returns (exit code or None when killed, timed out?, why it was killed)."""
    cap = MAX_OUTPUT_BYTES if max_bytes is None else max_bytes
    budget = cap
    out_path, err_path = cwd / "stdout.txt", cwd / "stderr.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err, KillScope(KILL_GRACE_S) as scope:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            err.write(f"cannot start {argv[0]!r}: {exc}\n".encode())
            return 127, False, ""
        sinks = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
        selector = selectors.DefaultSelector()
        for fd in sinks:
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        killed = ""
        try:
            while not killed:
                left = deadline - time.monotonic()
                if left <= 0:
                    killed = f"timed out after {timeout_s:g} s"
                    break
                for key, _ in selector.select(timeout=min(0.05, left)):
                    chunk = _read(key.fd)
                    if chunk == b"":
                        selector.unregister(key.fd)
                    elif chunk is not None:
                        budget = _take(chunk, sinks[key.fd], budget)
                        if budget < 0:
                            killed = f"output over {cap} bytes"
                            break
                if not killed and proc.poll() is not None:
                    break  # exited: what it left running is killed below, then the pipes are drained
            scope.kill(proc.pid)  # leftovers a finished hook started in the background die with it
            proc.wait()
            for fd in list(selector.get_map()):  # the writers are gone: what they wrote, within the budget
                while budget >= 0:
                    chunk = _read(fd)
                    if not chunk:
                        break  # EOF, or a writer this process could not kill keeps the pipe open: stop here
                    budget = _take(chunk, sinks[fd], budget)
                    if budget < 0 and not killed:
                        killed = f"output over {cap} bytes"
        finally:
            selector.close()
            proc.stdout.close()
            proc.stderr.close()
    return (None if killed else proc.returncode), killed.startswith("timed out"), killed


def _read(fd: int) -> bytes | None:
    """One read of a non-blocking pipe: b"" at EOF, None when nothing is there yet."""
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return None


def _take(chunk: bytes, sink, budget: int) -> int:
    """Write at most `budget` bytes of chunk to sink; the budget left, negative once the output went over."""
    sink.write(chunk[: max(0, budget)])
    return budget - len(chunk)


def _tail(path: Path, limit: int = STORED_BYTES) -> str:
    if not path.exists():
        return ""
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - limit))
        data = fh.read()
    prefix = f"[... {size - limit} bytes cut]\n" if size > limit else ""
    return prefix + data.decode("utf-8", "replace")


def run_dir(workspace: Path, hook_id: int) -> Path:
    """A fresh folder for one run: <workspace>/repro/runs/hook-<id>-<UTC time>."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    path = workspace / "repro" / "runs" / f"hook-{hook_id}-{stamp}"
    path.mkdir(parents=True, exist_ok=False)
    return path


HOOK_ENV = ("PATH", "HOME", "LANG", "TMPDIR", "TZ", "USER", "LOGNAME")  # plus LC_*, DIGEST_* set per run
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def hook_environ(environ, names=()) -> dict[str, str]:
    """An allow-list: PATH, HOME, LANG, LC_*, TMPDIR, TZ, USER, LOGNAME, plus the variables the hook's owner
    named (`--env`, `env = [...]`). A hook may run code from a paper's repository: it sees no password, token
    or database URL of the caller's unless someone chose to hand it over."""
    wanted = set(names)
    return {k: v for k, v in environ.items() if k in HOOK_ENV or k.startswith("LC_") or k in wanted}


def env_names(names) -> str:
    """Variable names a hook may see, checked, as stored on the hook (space separated)."""
    for name in names:
        if not ENV_NAME.match(name):
            raise DigestError(f"env: {name!r} is not an environment variable name")
    return " ".join(dict.fromkeys(names))


def execute(
    argv: list[str],
    cwd: Path,
    *,
    claimed: float | None,
    claimed_hi: float | None,
    unit: str,
    tolerance: float,
    tolerance_kind: str,
    timeout_s: float,
    extra_env: dict[str, str] | None = None,
    env_names: tuple[str, ...] = (),
) -> Outcome:
    """One run of a hook whose hardware requirement is met: process, output, measured value, verdict."""
    env = hook_environ(os.environ, env_names)
    env.update(extra_env or {})
    env["DIGEST_RUN_DIR"] = str(cwd)
    env["PYTHONUNBUFFERED"] = "1"
    started = time.monotonic()
    code, _timed_out, killed = run_process(argv, cwd, env, timeout_s)
    duration = round(time.monotonic() - started, 3)
    stdout, stderr = _tail(cwd / "stdout.txt"), _tail(cwd / "stderr.txt")
    base = Outcome("failed", None, code, stdout, stderr, duration)
    if killed:
        base.note = killed
        return base
    if code != 0:
        base.note = f"exit status {code}"
        return base
    measured = parse_measured(stdout)
    if measured is None:
        base.note = 'no {"value": number} JSON line on stdout'
        return base
    base.measured = measured
    if claimed is None:
        base.verdict, base.note = "failed", "nothing to compare against: the hook has no claim and no claimed value"
        return base
    base.verdict = judge(measured, claimed, claimed_hi, tolerance, tolerance_kind)
    base.note = describe(measured, claimed, claimed_hi, unit)
    return base


# ----------------------------------------------------------------------------- hooks file


@dataclass
class HookSpec:
    """One [[hook]] of a hooks file: which claim (item + value + unit) and how to re-measure it."""

    name: str
    script: str
    command: str
    item: str
    value: float | None
    unit: str
    tolerance: float
    tolerance_kind: str
    requires: str
    timeout_s: float
    description: str
    claimed: float | None
    claimed_hi: float | None
    env: str = ""


_HOOK_KEYS = {
    "name", "script", "command", "item", "value", "unit", "tolerance", "absolute", "at_least", "requires", "timeout",
    "description", "claimed", "claimed_hi", "env",
}  # fmt: skip


def load_hooks_file(path: Path) -> list[HookSpec]:
    """Parse repro/hooks.toml; every mistake names the file, the hook and the field."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DigestError(f"{path}: hooks file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise DigestError(f"{path}: not valid TOML ({exc})") from None
    specs = []
    for i, h in enumerate(raw.get("hook", [])):
        where = f"{path}: hook[{i}] {h.get('name', '')!r}"
        unknown = set(h) - _HOOK_KEYS
        if unknown:
            raise DigestError(f"{where}: unknown field {sorted(unknown)[0]!r}")
        if not h.get("name"):
            raise DigestError(f"{where}: field 'name' is required")
        if not (h.get("script") or h.get("command")):
            raise DigestError(f"{where}: field 'script' or 'command' is required")
        if h.get("item") and h.get("value") is None:
            raise DigestError(f"{where}: field 'value' is required with 'item'")
        if not h.get("item") and h.get("claimed") is None:
            raise DigestError(f"{where}: give 'item' + 'value' (a claim) or 'claimed' (a standalone benchmark)")
        if not isinstance(h.get("env", []), list) or not all(isinstance(n, str) for n in h.get("env", [])):
            raise DigestError(f"{where}: field 'env' must be a list of variable names")
        if h.get("requires", "") not in REQUIREMENTS:
            raise DigestError(f"{where}: field 'requires' must be one of {', '.join(r for r in REQUIREMENTS if r)}")
        try:
            specs.append(
                HookSpec(
                    name=str(h["name"]),
                    script=str(h.get("script", "")),
                    command=str(h.get("command", "")),
                    item=str(h.get("item", "")),
                    value=None if h.get("value") is None else float(h["value"]),
                    unit=str(h.get("unit", "")),
                    tolerance=float(h.get("tolerance", 0.05)),
                    tolerance_kind="absolute" if h.get("absolute") else "at-least" if h.get("at_least") else "relative",
                    requires=str(h.get("requires", "")),
                    timeout_s=float(h.get("timeout", 600)),
                    description=str(h.get("description", "")),
                    claimed=None if h.get("claimed") is None else float(h["claimed"]),
                    claimed_hi=None if h.get("claimed_hi") is None else float(h["claimed_hi"]),
                    env=env_names(h.get("env", [])),
                )
            )
        except (TypeError, ValueError, DigestError) as exc:
            raise DigestError(f"{where}: {exc}") from None
    return specs


# ----------------------------------------------------------------------------- orchestration (store + runner)


def claimed_for(engine, hook) -> tuple[float | None, float | None, str]:
    """What a hook is judged against: its claim's value (or range), else the hook's own claimed value."""
    from digest import store

    if hook.claim_id is not None:
        claim, _ = store.claim_with_item(engine, hook.claim_id)
        return claim.value, claim.value_hi, claim.unit
    return hook.claimed, hook.claimed_hi, hook.unit


def run_hook(engine, hook, workspace: Path):
    """Run one hook (or skip it when its hardware is missing) and store the run; returns the ReproRun."""
    from digest import store
    from digest.models import ReproRun

    claimed, claimed_hi, unit = claimed_for(engine, hook)
    ok, found = hardware(hook.requires)
    env = environment(hook.requires, found)
    folder = ""
    if not ok:
        outcome = Outcome("skipped", note=f"requires {hook.requires}: {found}")
    else:
        try:
            argv = command_argv(hook.command, hook.script, Path(hook.workdir or "."))
        except DigestError as exc:  # one broken hook must not stop `repro run --all`
            return _save_failed(engine, hook, claimed, env, str(exc))
        cwd = run_dir(Path(workspace), hook.id)
        folder = str(cwd)
        extra = {"DIGEST_CLAIMED": "" if claimed is None else repr(claimed), "DIGEST_CLAIM_UNIT": unit}
        extra["DIGEST_CLAIM_ID"] = "" if hook.claim_id is None else str(hook.claim_id)
        outcome = execute(
            argv,
            cwd,
            claimed=claimed,
            claimed_hi=claimed_hi,
            unit=unit,
            tolerance=hook.tolerance,
            tolerance_kind=hook.tolerance_kind,
            timeout_s=hook.timeout_s,
            extra_env=extra,
            env_names=tuple((hook.env or "").split()),
        )
        env["argv"] = argv
    run = ReproRun(
        hook_id=hook.id,
        claim_id=hook.claim_id,
        duration_s=outcome.duration_s,
        verdict=outcome.verdict,
        measured=outcome.measured,
        claimed=claimed,
        exit_code=outcome.exit_code,
        stdout=outcome.stdout,
        stderr=outcome.stderr,
        environment=json.dumps(env),
        note=outcome.note,
        run_dir=folder,
    )
    return store.save_run(engine, run)


def _save_failed(engine, hook, claimed: float | None, env: dict, note: str):
    from digest import store
    from digest.models import ReproRun

    run = ReproRun(
        hook_id=hook.id,
        claim_id=hook.claim_id,
        verdict="failed",
        claimed=claimed,
        environment=json.dumps(env),
        note=note,
    )
    return store.save_run(engine, run)


def record(engine, hook, value: float, note: str, env: dict | None = None):
    """Store a value measured elsewhere (e.g. on a lent GPU) as a run of this hook, judged like any run."""
    from digest import store
    from digest.models import ReproRun

    if not math.isfinite(value):
        raise DigestError(f"--value {value}: not a finite number")
    claimed, claimed_hi, unit = claimed_for(engine, hook)
    verdict = "failed" if claimed is None else judge(value, claimed, claimed_hi, hook.tolerance, hook.tolerance_kind)
    text = "; ".join(t for t in (describe(value, claimed, claimed_hi, unit), note) if t)
    run = ReproRun(
        hook_id=hook.id,
        claim_id=hook.claim_id,
        verdict=verdict,
        measured=value,
        claimed=claimed,
        environment=json.dumps(env or {"recorded": True}),
        note=text,
        source="record",
    )
    return store.save_run(engine, run)


def sync_hooks(engine, path: Path) -> tuple[list, list[str]]:
    """Register every hook of a hooks file against this database's claims; returns (hooks, problems)."""
    from digest import store
    from digest.models import ReproHook

    specs = load_hooks_file(path)
    root = path.resolve().parent.parent if path.resolve().parent.name == "repro" else path.resolve().parent
    saved, problems = [], []
    for spec in specs:
        claim_id = None
        if spec.item:
            claim = store.find_claim(engine, spec.item, spec.value, spec.unit)
            if claim is None:
                problems.append(f"{spec.name}: no claim {spec.value:g} {spec.unit} on item {spec.item!r}")
                continue
            claim_id = claim.id
        if spec.script and not (root / spec.script).is_file():
            problems.append(f"{spec.name}: script {spec.script} not found under {root}")
            continue
        hook = ReproHook(
            claim_id=claim_id,
            name=spec.name,
            command=spec.command,
            script=spec.script,
            workdir=str(root),
            tolerance=spec.tolerance,
            tolerance_kind=spec.tolerance_kind,
            requires=spec.requires,
            timeout_s=spec.timeout_s,
            description=spec.description,
            claimed=spec.claimed,
            claimed_hi=spec.claimed_hi,
            unit=spec.unit,
            env=spec.env,
        )
        saved.append(store.save_hook(engine, hook))
    return saved, problems


# ----------------------------------------------------------------------------- scaffold

_TEMPLATE = '''"""Reproduction hook for claim {claim_id}: {headline}.

Claim ({kind}{qualifier}): {value}{unit_sp}
Sentence: {sentence}
Item: {title}
Link: {url}
Code:
{code}

Checks: TODO - say what this script re-derives or re-measures.
Cannot check: TODO - say what it leaves out (hardware, data, parts of the claim).
Register it: digest repro add {claim_id} --script {script}{requires}
Standalone: python {script}   (prints the working, then one JSON line {{"value": ...}})
"""

import json

CLAIMED = {claimed!r}  # {unit}


def measure() -> float | None:
    """Re-derive or re-measure the claimed quantity; return it in the claim's unit."""
    # TODO: replace with the real computation. Returning None makes the run "failed" (no value).
    return None


if __name__ == "__main__":
    value = measure()
    print(f"claimed {{CLAIMED}} {unit}, measured {{value}}")
    print(json.dumps({{"value": value}}))
'''


def _inert(text: str) -> str:
    """Feed text made safe inside a generated docstring: no quotes, backslashes or braces can end or escape it."""
    return " ".join(str(text).split()).replace("\\", "/").replace('"', "'").replace("{", "(").replace("}", ")")


def scaffold(claim, item, root: Path, requires: str = "") -> Path:
    """Write repro/<slug>/run.py stating the claim and linking the item's code; refuses to overwrite."""
    from digest.normalize import slugify

    if not all(math.isfinite(v) for v in (claim.value, claim.value_hi or 0.0)):
        raise DigestError(f"claim {claim.id}: its value {claim.value:g} is not a finite number (run `digest claims`)")
    value = f"{claim.value:g}" + (f"-{claim.value_hi:g}" if claim.value_hi is not None else "")
    slug = slugify(f"{item.arxiv_id or item.title[:40]} {claim.kind} {value}{claim.unit}")
    folder = root / "repro" / slug
    if folder.exists():
        raise DigestError(f"{folder}: already exists (edit it, or remove it to scaffold again)")
    code = json.loads(item.code_urls or "[]")
    script = f"repro/{slug}/run.py"
    text = _TEMPLATE.format(
        claim_id=claim.id,
        headline=_inert(f"{value} {claim.unit} {claim.kind}"),
        kind=_inert(claim.kind),
        qualifier=f", {_inert(claim.qualifier)}" if claim.qualifier else "",
        value=value,
        unit_sp=f" {_inert(claim.unit)}" if claim.unit else "",
        unit=_inert(claim.unit) or "(unitless)",
        sentence=_inert(claim.text),
        title=_inert(item.title),
        url=_inert(item.url or (f"https://arxiv.org/abs/{item.arxiv_id}" if item.arxiv_id else "")),
        code="\n".join(f"  {_inert(u)}" for u in code) or "  (no code links found in the item's text)",
        script=script,
        requires=f" --requires {requires}" if requires else "",
        claimed=claim.value,
    )
    folder.mkdir(parents=True)
    (folder / "run.py").write_text(text, encoding="utf-8")
    return folder / "run.py"
