"""`digest eval ...` commands that measure the finding summaries: the headline (issue #14)."""

from __future__ import annotations

from pathlib import Path

import click

from digest.cli import eval_group
from digest.errors import DigestError


@eval_group.command("headlines")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--split", type=click.Choice(["dev", "test"]), help="Only the rows of this split.")
@click.option("--show-errors", is_flag=True, help="List every abstract whose headline was wrong.")
def eval_headlines(file: Path, split: str | None, show_errors: bool) -> None:
    """Share of abstracts whose headline is the labelled main result (or correctly none)."""
    import json

    from digest.headline import evaluate

    if not file.exists():
        raise DigestError(f"{file}: labelled headlines file not found")
    try:
        r = evaluate(file, split)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DigestError(f"{file}: not a headlines eval file ({type(exc).__name__}: {exc})") from None
    if not r["n"]:
        raise DigestError(f"{file}: no rows" + (f" in split {split!r}" if split else ""))
    click.echo(f"right headline {r['accuracy']:.3f}  ({r['n'] - len(r['errors'])}/{r['n']} abstracts)")
    click.echo(
        f"with a result {r['right_with_result']}/{r['with_result']}  "
        f"without one (none expected) {r['right_without_result']}/{r['without_result']}"
    )
    if show_errors:
        for err in r["errors"]:
            click.echo(json.dumps(err, ensure_ascii=False))
