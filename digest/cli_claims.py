"""CLI for the claims ledger."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli import State, eval_group, main, pass_state
from digest.errors import DigestError


@main.command()
@pass_state
def claims(state: State) -> None:
    """Extract headline numbers from titles and summaries into the claims ledger."""
    from digest import pipeline

    n = pipeline.extract_claims(state.engine)
    click.echo(f"Extracted {n} claims.")


@eval_group.command("claims")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--show-errors", is_flag=True, help="List every missed and spurious claim.")
def eval_claims(file: Path, show_errors: bool) -> None:
    """Precision and recall of claim extraction on a labelled JSONL file, matched on (value, unit, kind)."""
    import json

    from digest.claims import evaluate

    if not file.exists():
        raise DigestError(f"{file}: labelled claims file not found")
    try:
        result = evaluate(file)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DigestError(f"{file}: not a claims eval file ({type(exc).__name__}: {exc})") from None
    click.echo(f"precision {result['precision']:.3f}  recall {result['recall']:.3f}  f1 {result['f1']:.3f}")
    click.echo(f"tp {result['tp']}  fp {result['fp']}  fn {result['fn']}")
    if show_errors:
        for err in result["errors"]:
            click.echo(json.dumps(err, ensure_ascii=False))


# --- reproduction hooks ---------------------------------------------------------


@main.group()
def repro() -> None:
    """Reproduction hooks: re-measure a claim with a registered command and record the verdict."""


def _default_hooks_file() -> Path:
    from digest.config import REPO_ROOT

    local = Path("repro/hooks.toml")
    return local if local.is_file() else REPO_ROOT / "repro" / "hooks.toml"


@repro.command("add")
@click.argument("claim_id", metavar="CLAIM", type=int)
@click.option("--command", "command", default="", help="Command to run (argv, no shell); `{script}` is the script.")
@click.option("--script", default="", help="A script under repro/ run with this Python (default command).")
@click.option("--tolerance", type=float, default=0.05, show_default=True, help="Allowed difference (relative).")
@click.option("--absolute", is_flag=True, help="The tolerance is absolute, in the claim's unit.")
@click.option("--at-least", "at_least", is_flag=True, help="The claim is a floor: any higher measurement holds.")
@click.option("--requires", type=click.Choice(["cuda"]), help="Hardware the hook needs; skipped where missing.")
@click.option("--timeout", "timeout_s", type=float, default=600.0, show_default=True, help="Seconds until killed.")
@click.option("--name", default="", help="A unique name to refer to the hook by (default: hook id).")
@click.option("--description", default="", help="What the hook checks and what it cannot.")
@click.option("--env", "env", multiple=True, metavar="NAME", help="Pass this environment variable to the hook too.")
@pass_state
def repro_add(state: State, claim_id: int, command: str, script: str, tolerance: float, absolute: bool, at_least: bool,
              requires: str | None, timeout_s: float, name: str, description: str,
              env: tuple[str, ...]) -> None:  # fmt: skip
    """Register a command that re-measures claim CLAIM."""
    from digest import store
    from digest.models import ReproHook

    if not command and not script:
        raise DigestError("give --command CMD or --script PATH (or both, with {script} in the command)")
    if script and not Path(script).is_file():
        raise DigestError(f"--script {script}: file not found")
    if absolute and at_least:
        raise DigestError("--absolute and --at-least: pick one")
    if tolerance < 0:
        raise DigestError(f"--tolerance {tolerance}: must be >= 0")
    if timeout_s <= 0:
        raise DigestError(f"--timeout {timeout_s}: must be > 0")
    from digest.repro import env_names

    try:
        names = env_names(env)
    except DigestError as exc:
        raise DigestError(f"--{exc}") from None
    claim, _ = store.claim_with_item(state.engine, claim_id)
    if name and any(h.name == name for h in store.hooks(state.engine)):
        raise DigestError(f"--name {name!r}: a hook with this name exists")
    hook = ReproHook(
        claim_id=claim.id,
        name=name,
        command=command,
        script=script,
        workdir=str(Path.cwd()),
        tolerance=tolerance,
        tolerance_kind="absolute" if absolute else "at-least" if at_least else "relative",
        requires=requires or "",
        timeout_s=timeout_s,
        description=description,
        unit=claim.unit,
        env=names,
    )
    from digest.repro import command_argv

    command_argv(command, script, Path.cwd())  # a malformed command fails now, not at run time
    hook = store.save_hook(state.engine, hook)
    click.echo(f"Hook {hook.id} added for claim {claim.id} ({claim.value:g} {claim.unit} {claim.kind}).")


@repro.command("sync")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_state
def repro_sync(state: State, file: Path | None) -> None:
    """Register the hooks of a hooks file (default: repro/hooks.toml) against this database's claims."""
    from digest.repro import sync_hooks

    path = file or _default_hooks_file()
    saved, problems = sync_hooks(state.engine, path)
    for hook in saved:
        target = f"claim {hook.claim_id}" if hook.claim_id is not None else f"claimed {hook.claimed:g} {hook.unit}"
        click.echo(f"hook {hook.id:<4} {hook.name:32} {target}")
    for problem in problems:
        click.echo(f"not registered: {problem}", err=True)
    click.echo(f"{len(saved)} hooks registered from {path}.")


@repro.command("list")
@pass_state
def repro_list(state: State) -> None:
    """Every hook with its claim, requirement and latest verdict."""
    from digest import store

    hooks = store.hooks(state.engine)
    if not hooks:
        click.echo("No hooks. Add one with `digest repro add CLAIM --command CMD` or `digest repro sync`.")
        return
    last = {}
    for run in store.runs(state.engine):
        last[run.hook_id] = run
    for h in hooks:
        target = f"claim {h.claim_id}" if h.claim_id is not None else f"claimed {h.claimed:g} {h.unit}"
        run = last.get(h.id)
        verdict = f"{run.verdict} ({run.started_at:%Y-%m-%d %H:%M})" if run else "never run"
        tol = {"absolute": f"±{h.tolerance:g}", "at-least": f"≥ -{h.tolerance:g} rel"}.get(
            h.tolerance_kind, f"±{h.tolerance:g} rel"
        )
        req = f" requires {h.requires}" if h.requires else ""
        if h.claim_id is not None and store.claim_with_item(state.engine, h.claim_id)[0].vanished:
            req += " (claim no longer in the item's text)"
        click.echo(f"{h.id:<4} {h.name or '-':30} {target:14} {tol}{req}  {verdict}")
        click.echo(f"     {h.script or h.command}")


@repro.command("run")
@click.argument("hook_ref", metavar="[HOOK]", required=False)
@click.option("--claim", "claim_id", type=int, help="Run every hook of this claim.")
@click.option("--all", "run_all", is_flag=True, help="Run every registered hook.")
@pass_state
def repro_run(state: State, hook_ref: str | None, claim_id: int | None, run_all: bool) -> None:
    """Run hooks (by id or name, a claim's, or all) and record each verdict; exits 1 if any failed."""
    from digest import store
    from digest.repro import run_hook

    if sum(x is not None and x is not False for x in (hook_ref, claim_id, run_all or None)) != 1:
        raise DigestError("give exactly one of HOOK, --claim ID or --all")
    if hook_ref:
        hooks = [store.get_hook(state.engine, hook_ref)]
    elif claim_id is not None:
        store.claim_with_item(state.engine, claim_id)
        hooks = store.hooks(state.engine, claim_id=claim_id)
        if not hooks:
            raise DigestError(f"claim {claim_id}: no hooks (add one with `digest repro add {claim_id} ...`)")
    else:
        hooks = store.hooks(state.engine)
    failed = 0
    for hook in hooks:
        run = run_hook(state.engine, hook, state.config.workspace)
        failed += run.verdict == "failed"
        label = hook.name or f"hook {hook.id}"
        click.echo(f"{label:32} {run.verdict:10} {run.duration_s:6.2f}s  {run.note}")
    click.echo(f"{len(hooks)} hooks run, {failed} failed.")
    if failed:
        raise SystemExit(1)


@repro.command("record")
@click.argument("hook_ref", metavar="HOOK")
@click.option("--value", type=float, required=True, help="The value measured elsewhere.")
@click.option("--note", default="", help="Where and how it was measured (machine, versions).")
@pass_state
def repro_record(state: State, hook_ref: str, value: float, note: str) -> None:
    """Store a value measured outside Digest (e.g. on a GPU machine) as a run of HOOK."""
    from digest import store
    from digest.repro import record

    hook = store.get_hook(state.engine, hook_ref)
    run = record(state.engine, hook, value, note)
    click.echo(f"Recorded run {run.id} of {hook.name or hook.id}: {run.verdict} ({run.note})")


@repro.command("show")
@click.argument("claim_id", metavar="CLAIM", type=int)
@pass_state
def repro_show(state: State, claim_id: int) -> None:
    """A claim, its sentence, its hooks and every run, oldest first."""
    from digest import store

    claim, item = store.claim_with_item(state.engine, claim_id)
    rng = f"–{claim.value_hi:g}" if claim.value_hi is not None else ""
    click.echo(f"claim {claim.id}: {claim.value:g}{rng} {claim.unit} {claim.kind} ({claim.qualifier or '-'})")
    click.echo(f"  item: {item.title} [{item.key}]")
    click.echo(f"  text: {claim.text}")
    for h in store.hooks(state.engine, claim_id=claim_id):
        click.echo(f"  hook {h.id} {h.name}: {h.script or h.command}")
    history = store.runs(state.engine, claim_id=claim_id)
    if not history:
        click.echo("  no runs yet")
    for r in history:
        when = f"{r.started_at:%Y-%m-%d %H:%M:%S}"
        click.echo(f"  {when}  hook {r.hook_id}  {r.verdict:10} {r.note or '-'}  [{r.source}]")


@repro.command("scaffold")
@click.argument("claim_id", metavar="CLAIM", type=int)
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              help="Project folder that holds repro/ (default: the current folder).")  # fmt: skip
@click.option("--requires", type=click.Choice(["cuda"]), help="Hardware the script will need (noted in it).")
@pass_state
def repro_scaffold(state: State, claim_id: int, root: Path, requires: str | None) -> None:
    """Write repro/<slug>/run.py: a script template that states the claim, links its code, prints the JSON line."""
    from digest import store
    from digest.repro import scaffold

    claim, item = store.claim_with_item(state.engine, claim_id)
    path = scaffold(claim, item, root, requires or "")
    click.echo(f"Wrote {path}")
    click.echo(f"Fill in measure(), then: digest repro add {claim.id} --script {path.relative_to(root)}")
