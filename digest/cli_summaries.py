"""CLI: `digest eval summaries` — how often the one-liner is the finding, on a labelled set."""

from __future__ import annotations

import json
from pathlib import Path

import click

from digest.cli import eval_group
from digest.errors import DigestError


@eval_group.command("summaries")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--split", type=click.Choice(["all", "dev", "test"]), default="all", show_default=True, help="Which abstracts."
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures (and misses) as one JSON object.")
@click.option("--verbose", "-v", is_flag=True, help="List every abstract whose one-liner missed.")
def eval_summaries(file: Path, split: str, as_json: bool, verbose: bool) -> None:
    """Share of one-liners that are result sentences (or, without one, "what the paper does") on a JSONL file."""
    from digest.summarize_eval import evaluate, load_eval

    if not file.is_file():
        raise DigestError(f"{file}: labelled summaries file not found")
    try:
        rows = load_eval(file)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DigestError(f"{file}: not a summaries eval file ({exc})") from None
    result = evaluate(rows, split)
    if not result["n"]:
        raise DigestError(f"{file}: no labelled abstracts in split {split!r}")
    if as_json:
        if not verbose:
            result = {k: v for k, v in result.items() if k != "misses"}
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    click.echo(f"split {split}: {result['hits']}/{result['n']} one-liners are the finding ({result['share']:.3f})")
    click.echo(
        f"  with a result sentence: {result['with_result_share']:.3f} of {result['with_result']}; "
        f"without (fallback to what the paper does): {result['fallback_share']:.3f} of {result['fallback']}"
    )
    click.echo(f"  first sentence (the old one-liner): {result['first_sentence_share']:.3f}")
    if verbose:
        for miss in result["misses"]:
            click.echo(
                f"MISS {miss['id']}: sentence {miss['chosen']} ({miss['role']}), "
                f"expected one of {miss['expected']}: {miss['one_line']}"
            )
