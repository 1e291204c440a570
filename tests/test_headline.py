"""The headline: which claim is a finding's main result, the phrase a reader sees, and one choice everywhere."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from digest.claims import extract_claims
from digest.headline import choose_headline, evaluate, format_claim, headline_text

EVAL = Path(__file__).resolve().parent / "data" / "headlines_eval.jsonl"


def Row(claim, **changes):
    """A ledger-like row: the claim's fields with some replaced (field, kind)."""
    fields = {k: getattr(claim, k) for k in claim.__dataclass_fields__}
    return type("Row", (), {**fields, "field": "summary", **changes})()


def headline(text: str):
    return choose_headline(extract_claims(text), text)


# The failures issue #14 lists, in sentences shaped like the abstracts they came from.
@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        (
            "In the pretrained model, 38% of tokens are routed to the shared experts. Routing rare tokens to a small "
            "expert subset cuts expert FLOPs by 31% at equal validation loss.",
            "31% fewer expert FLOPs",
        ),
        (
            "Dropping 75% of vision tokens after the second layer, the method achieves 2.1x faster prefill with no "
            "measurable accuracy loss.",
            "2.1× faster prefill",
        ),
        (
            "We pretrain a 1B-parameter model in 11 days on eight A100 GPUs for a total cloud cost of $2,300.",
            "$2,300 cost",
        ),
        (
            "At low load, speculation cuts latency by 2.6x compared with the batch-1 estimate.",
            "2.6× lower latency (vs batch-1 estimate)",
        ),
        ("Our 7B model reaches 72.4% on MATH, +9.6 points over its base model.", "72.4% on MATH, +9.6 pts"),
        (
            "On Qwen3-8B, DFlash achieves a 6.17x lossless speedup over standard decoding on reasoning benchmarks.",
            "6.17× lossless speedup on Qwen3-8B (vs standard decoding)",
        ),
        (  # snapshot 2611.24736: two shares of tokens and cases come first
            "We find that 72% of prefill tokens are repeated from an earlier turn of the same trajectory, yet default "
            "prefix-cache policies evict them in 38% of cases before the next turn arrives. A simple tool-aware "
            "retention policy reduces median time-to-first-token by 38% and cuts prefill compute by 2.9x at the same "
            "cache capacity.",
            "38% lower median time-to-first-token",
        ),
        (  # snapshot 2610.13211: an overhead and a relative gain come before the main number
            "Compared with the same parallel drafter without correction, Domino increases mean acceptance length by "
            "16.6% and end-to-end speedup by 12.3%, at only 2.8% extra drafting latency. On GSM8K with a "
            "Llama-3.1-8B target, Domino reaches a 7.92× speedup over standard decoding.",
            "7.92× speedup on Llama-3.1-8B (vs standard decoding)",
        ),
        ("It reports up to ~12× speedup on the cache-write kernel.", "up to ~12× speedup"),
        (r"We obtain up to $3.2\times$ higher throughput than vLLM.", "up to 3.2× higher throughput (vs vLLM)"),
        ("The asynchronous design translates into a 22% increase in throughput.", "22% higher throughput"),
        ("The run costs $2.1M in total.", "$2.1M cost"),
        # real arXiv sentences (arXiv 2510.01591, 2603.14549, 2507.02241, 2505.16210)
        (
            "On AIME 24 with a 1.5B model, CLUE boosts accuracy from 56.7% (majority@64) to 70.0% (top-maj@16).",
            "56.7% → 70% accuracy on AIME",
        ),
        (
            "It retains 99.02% of the original performance while aggressively slashing computational FLOPs by ~80%.",
            "~80% fewer computational FLOPs",
        ),
        ("With retrieved information, the verbalization accuracy further improved to 90%.", "90% accuracy"),
        # arXiv 2605.14055, 2603.15389, 2512.08088
        (
            "Results present an average accuracy improvement of up to 6.67%, with peak gains on some tasks.",
            "up to 6.67% higher average accuracy",
        ),
        ("The recipe yields a notable 4.6% accuracy improvement on downstream tasks.", "4.6% accuracy improvement"),
        (
            r"Our method yields an average of 27.7% improvement in MRR$\texttt{@}$5 across filing types.",
            "27.7% higher MRR@5",
        ),
        (
            "NQKV enables a 2x larger batch size or a 4x longer context length, and it improves throughput by 9.3x "
            "compared to when the KV cache is not used.",
            "9.3× higher throughput",
        ),
    ],
)
def test_the_main_result_headlines_as_a_phrase(text, phrase):
    h = headline(text)
    assert h is not None and h.text == phrase


@pytest.mark.parametrize(
    "text",
    [
        "We find that 72% of prefill tokens are repeated from an earlier turn.",  # only `other`
        "Model FLOPs Utilization answers how much of your GPU's 312 TFLOPS you actually use during training.",
        "The fit gives N* = 2.71×10⁻³ · M + 87M for a target with M parameters.",
        "Three numbers hold within ±15% across all of them.",
        # the price of the method, not its finding (snapshot 2610.10124)
        "Converting Llama-3.1-8B with groups of two layers halves the KV cache with a 0.7-point drop on LongBench.",
        "In pretraining runs, our method keeps expert load within 8% of uniform throughout training.",
    ],
)
def test_no_headline_rather_than_a_wrong_one(text):
    assert headline(text) is None


def test_other_never_headlines_even_alone_with_a_baseline():
    text = "Ablating the full subspace reduces refusal rates from 97% to 4% across categories."
    claims = extract_claims(text)
    assert [c.kind for c in claims] == ["other"]
    assert choose_headline(claims, text) is None


def test_a_from_to_change_names_what_moved():
    text = "Framing raises average attack success from 6% to 64%, and the most effective frames resemble workflows."
    assert headline(text).text == "6% → 64% average attack success"


def test_a_bound_is_a_qualifier_not_a_condition():
    text = "With these changes, models retain their abilities after 10,000 edits, and edit success remains above 90%."
    assert headline(text).text == ">90% edit success"


def test_a_condition_or_a_competitor_figure_does_not_win():
    text = (
        "Across benchmarks, adaptive budgets reduce the number of thinking tokens by 46% with an accuracy loss of "
        "0.8 points, compared with a loss of 4.7 points for a fixed token cap."
    )
    assert headline(text).value == 46


def test_a_title_number_headlines_only_when_the_summary_has_no_result():
    title = "DFlash: 6x faster drafts"
    summary = "The drafter cuts expert FLOPs by 31% at equal quality."
    title_claims = [Row(c, field="title") for c in extract_claims(title)]
    both = title_claims + extract_claims(summary)
    assert choose_headline(both, summary).value == 31  # the title already shows its 6x
    assert choose_headline(title_claims, "We describe the drafter.").text == "6× faster drafts"


def test_a_kind_the_extractor_does_not_write_is_a_generic_change_but_other_never_headlines():
    text = "Our router reaches a 22% lower loss on C4."
    c = extract_claims(text)[0]
    assert choose_headline([Row(c, kind="loss")], text).text == "22% lower loss"
    assert choose_headline([Row(c, kind="other")], text) is None


def test_a_claim_whose_sentence_left_the_summary_is_not_chosen():
    old = extract_claims("Our kernel is 9.5x faster than FlashAttention.")
    summary = "We describe the kernel and its memory layout."
    assert choose_headline(old, summary) is None


@pytest.mark.parametrize(
    ("qualifier", "shown"),
    [
        ("within ±", "within ±15%"),
        ("up to about", "up to ~15%"),
        ("up to, about", "up to ~15%"),  # rows stored before #14 joined qualifiers with ", "
        ("within, ±", "within ±15%"),
        ("at least", "≥15%"),
        ("only", "only 15%"),
    ],
)
def test_qualifiers_read_as_one_phrase(qualifier, shown):
    c = extract_claims("Error stays at 15% on the set.")[0]
    row = type("Row", (), {**{k: getattr(c, k) for k in c.__dataclass_fields__}, "qualifier": qualifier})
    assert format_claim(row) == shown


def test_format_claim_reads_a_headline_too():
    h = headline("It reports up to ~12× speedup on the cache-write kernel.")
    assert format_claim(h) == "up to ~12x" and h.qualifier == "up to about"


def test_format_claim_still_importable_from_render():
    from digest.render import format_claim as from_render

    assert from_render is format_claim


def test_as_json_carries_the_export_fields():
    h = headline("Median latency falls from 230 ms to 120 ms when prefixes are cached.")
    assert h.as_json() == {
        "value": 120.0,
        "value_hi": None,
        "unit": "ms",
        "kind": "latency",
        "direction": "down",
        "baseline": 230.0,
        "text": "230 ms → 120 ms median latency",
    }
    assert headline_text(h.claim) == h.text


# --- the labelled set ----------------------------------------------------------------------------------------


def test_labelled_set_is_split_and_large_enough():
    rows = [json.loads(line) for line in EVAL.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 60 and {r["split"] for r in rows} == {"dev", "test"}
    assert len({r["id"] for r in rows}) == len(rows)


@pytest.mark.parametrize("split", ["dev", "test"])
def test_headlines_right_on_the_labelled_set(split):
    r = evaluate(EVAL, split)
    assert r["accuracy"] >= 0.85, r["errors"]


def test_headlines_right_on_real_abstracts_never_tuned_on():
    r = evaluate(EVAL.parent / "real" / "headlines_real.jsonl")
    assert r["n"] >= 60 and r["accuracy"] >= 0.85, r["errors"]


def test_eval_headlines_cli(runner, tmp_path):
    from digest.cli import main

    out = runner.invoke(main, ["eval", "headlines", str(EVAL), "--split", "test"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("right headline 0.")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    out = runner.invoke(main, ["eval", "headlines", str(bad)])
    assert out.exit_code == 1 and out.output.startswith("Error: ") and "Traceback" not in out.output
    out = runner.invoke(main, ["eval", "headlines", str(tmp_path / "missing.jsonl")])
    assert out.exit_code == 1 and "not found" in out.output


# --- one choice: site, export and search agree ---------------------------------------------------------------


def test_site_export_and_search_show_the_same_headline_and_one_liner(tmp_path, db, runner):
    from digest import render, store
    from digest.cli import main
    from digest.parse import Entry
    from tests.conftest import write_config

    cfg = write_config(tmp_path, "")
    engine = store.open_engine(db.url)
    store.init_db(engine)
    summaries = {
        "moe": "In the pretrained model, 38% of tokens are routed to the shared experts. Routing rare tokens to a "
        "small expert subset cuts expert FLOPs by 31% at equal validation loss.",
        "none": "We find that 72% of prefill tokens are repeated from an earlier turn.",
    }
    entries = [
        Entry(key=f"url:https://x.example/{k}", title=f"Paper {k}", url=f"https://x.example/{k}", summary=s,
              published=datetime(2026, 11, 20))
        for k, s in summaries.items()
    ]  # fmt: skip
    store.save_entries(engine, "snapshot", entries)

    def invoke(*args):
        result = runner.invoke(main, ["--config", str(cfg), *args], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        return result.output

    invoke("claims")
    exported = {r["title"]: r for r in map(json.loads, invoke("export").splitlines())}
    searched = {r["title"]: r for r in json.loads(invoke("search", "--json"))}
    site = {f.item.title: f for f in (render.finding(v) for v in store.site_views(engine))}
    for title in ("Paper moe", "Paper none"):
        f = site[title]
        shown = f.headline.as_json() if f.headline else None
        assert exported[title]["headline"] == searched[title]["headline"] == shown
        assert exported[title]["one_line"] == searched[title]["one_line"] == f.one_line
    assert exported["Paper moe"]["headline"]["text"] == "31% fewer expert FLOPs"
    assert exported["Paper none"]["headline"] is None
    assert site["Paper moe"].headline_claim.value == 31
    assert "31% fewer expert FLOPs" in render.finding_card(site["Paper moe"], "")  # the card shows the phrase
    assert 'class="headline"' not in render.finding_card(site["Paper none"], "")
    assert "31% fewer expert FLOPs" in invoke("search")
