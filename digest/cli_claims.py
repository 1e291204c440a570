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
