"""Headline numbers ("claims") from ML paper abstracts, titles and blog teasers.

Pure standard library: a handful of small regexes and functions, compiled once at import.

What counts as a claim (the rule, applied to the gold set in ``tests/data/claims_eval.jsonl`` too)
--------------------------------------------------------------------------------------------------
A number is a claim when it carries a *unit* or a *metric signal*:

* a unit or marker: ``x``/``×``/``-fold`` (also "a factor of N"), ``%``/percent, points/pp,
  PPL, tokens/s, req/s, it/s, GB/s, FLOPS, GPU-hours, GB/MB, ms/s/min/hours/days, Elo,
  "N fewer bits", a currency sign (``$1,500``, ``$2.1M``), a leaderboard rank (``#1``);
* a correlation symbol: ``ρ = 0.55``, ``Spearman ρ``, ``Pearson r``, ``R²=0.98``, ``Kendall τ``, ``κ``;
* an explicit sign (``+1.8``, ``−0.007``), scientific notation (``2.71×10⁻³``);
* a bare number tied to a metric: "0.929 average score", "FID of 2.17", "89.2 on MMLU",
  "F1 from 71.2 to 78.9", "50 vs 150", or an approximate decimal ("at ~0.58").

Everything else is not a claim. In particular *bare counts* ("200-item arena", "9 models from
5 organizations", "256 SAEs", "~600 training steps", "6 of 8 tasks") are setup, not results;
so are model and context sizes (8B, 128K, 1M context), hyphenated compounds (rank-1, 4-bit,
16-dimensional, top-5), years, dates, versions (v0.5.12, 3.1), arXiv ids, citation markers,
hardware counts ("8x A100", "A100 80GB"), resolutions and kernel sizes (224×224, 3x3),
reading times ("17 min read") and numbers written as words. Every percentage is a claim
(kind ``other`` when nothing says what it measures). A number used as another claim's
baseline ("compared to 82.1%", "up from 40%", "vs 0.851", "from 65% to 51%") is stored as
that claim's ``baseline``, not as a claim of its own.

Units (``Claim.unit``)
----------------------
``x`` ``%`` ``points`` ``rho`` ``r`` ``r2`` ``tau`` ``kappa`` ``ppl`` ``tokens/s`` ``req/s`` ``it/s``
``kb/s`` ``mb/s`` ``gb/s`` ``tb/s`` ``flops`` ``gflops`` ``tflops`` ``pflops`` ``eflops``
``gpu-hours`` ``kb`` ``mb`` ``gb`` ``tb`` ``ms`` ``us`` ``s`` ``min`` ``h`` ``days`` ``bits``
``elo`` ``rank`` ``$`` ``€`` ``£`` and ``""`` (unitless: scores, coefficients). A bare
perplexity value gets ``ppl``; a bare correlation named Spearman/Pearson/Kendall gets
``rho``/``r``/``tau``. Values keep their written sign (``−26.8%`` → -26.8) and scale
(``$2.1M`` → 2100000, ``2.71×10⁻³`` → 0.00271).

Kinds (``Claim.kind``)
----------------------
speedup, throughput, latency, time (wall-clock durations), memory, compute (FLOPs, GPU
time), cost (``$`` amounts and "cheaper"/"cost cuts"), energy, compression (compression
ratios, bits per weight), utilization (MFU, GPU-active time, % of peak), accuracy (accuracy
or any benchmark score: F1, BLEU, pass@k, nDCG, AUC, FID, Elo, win/preference/agreement
rate, quality retained, points on a benchmark), error (error/hallucination/false-positive
rates, MAE), correlation (ρ, r, R², τ), similarity, perplexity, efficiency, sparsity
(sparsity, pruning, activated fraction), ranking (``#1``), improvement / reduction (a gain or
a cut whose quantity is not one of the above), other.

The kind comes from cue words: a specific metric word next to the number wins (after it,
then before it, nearer first), then a unit's own kind, then generic improve/reduce words.
``points`` default to accuracy, a bare ``N×`` to speedup. A share of the model itself ("75% of heads",
"0.1% of the weights") is setup (``other``) unless a sparsity, compute or memory cue names it; a from→to
change takes the kind its clause's subject names ("the accuracy of ... falls from 65% to 51%").
A number with no cue of its own takes the
kind of the claim it continues ("1,200 tokens/s, a 1.8× gain"; "(L0 ≈ 50 vs 150)"; "by 1.7x ... and by
1.3x") or, within one paragraph, of the quantity the previous sentence opens with ("Model FLOPs
Utilization answers ... Learn why 30–70% is the real-world range"). ``direction`` is ``up``/``down``
from the sign, a from→to change or cue words, else ``""``. ``qualifier`` lists, space-separated in reading order, any
of: up to, about, nearly, at least, at most, over, under, within, only, ±, lossless, near-lossless ("up to about",
"within ±"); ``digest.headline.format_claim`` writes them as a reader reads them ("up to ~12x", "within ±15%").
``subject`` is a model named right after the number ("for Qwen3-8B"), else a method named at the start
of the sentence ("RTPurbo ..."), else a model named earlier. ``context`` lists hardware, context
lengths and benchmarks near the number (else anywhere in the sentence).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from digest.modelnames import MODEL_RE as _MODEL_RE
from digest.sentences import _sentence_spans, split_sentences

__all__ = ["Claim", "claim_key", "evaluate", "extract_claims", "split_sentences"]


@dataclass(frozen=True)
class Claim:
    value: float  # the headline value (for a range, the low end; for "from A to B", B)
    value_hi: float | None  # high end of a range ("3-10×" → 3, 10)
    unit: str  # see module docstring for the set
    kind: str  # see module docstring for the set
    direction: str  # "up" | "down" | ""
    qualifier: str  # "lossless", "up to", "about", "over", "at least", "under", "within", "only", ...
    subject: str  # model or method the number is about, if stated
    context: str  # dataset, hardware, context length, if stated
    baseline: float | None  # "vs 0.851", "from 65% to 51%" → 65
    text: str  # the exact sentence
    start: int  # span of the number expression inside `text`
    end: int


# ----------------------------------------------------------------------------- sentences

# Sentence splitting lives in digest.sentences: a site build imports it without the claim patterns compiled here.


# ----------------------------------------------------------------------------- numbers

_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
# One number expression: optional sign, the number, optional ×10⁻³, optional range "-B"/" to B".
_ATOM = re.compile(
    rf"(?P<sign>[+\-−±])?(?P<a>{_NUM})"
    r"(?P<sci>\s?[×x]\s?10(?:\^\{?[-+−]?\d+\}?|[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+))?"
    rf"(?:(?P<u1>\s?(?:%|[×x](?![\w×])))?(?:\s?[-–—]\s?|\s+to\s+)(?P<b>{_NUM}))?"
)
_DIGIT = re.compile(r"\d")
_SUPER = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺−", "0123456789--" + "-")
_CITATION = re.compile(r"\[\d+(?:\s*[,–-]\s*\d+)*\]")  # [12], [12, 15], [3-5]

# Units that may follow a number, tried in order; "{}" takes the captured SI prefix.
_UNITS = [
    (re.compile(r"\s?\\?%|\s?per ?cent\b"), "%"),  # "40\%": arXiv abstracts keep TeX escapes
    (re.compile(r"\s?\$?\s?\\times\b\s?\$?"), "x"),  # "2.5$\times$", "$3.2\times$"
    (re.compile(r"\s?(?:percentage[- ]points?|pp|p\.p\.)(?!\w)"), "points"),
    (re.compile(r"[-\s]?points?\b|\s?pts?\b"), "points"),
    (re.compile(r"[-\s]?fold\b"), "x"),
    (re.compile(r"\s?[×xX](?![\w×])(?!\s?\d)"), "x"),
    (re.compile(r"\s?PPL\b"), "ppl"),
    (re.compile(r"\s?(?:tokens?|toks?)\s?(?:/\s?s(?:ec)?|per\s+sec(?:ond)?)\b"), "tokens/s"),
    (re.compile(r"\s?(?:requests?|reqs?|queries)\s?(?:/\s?s(?:ec)?|per\s+sec(?:ond)?)\b|\s?[QR]PS\b"), "req/s"),
    (re.compile(r"\s?it/s\b"), "it/s"),
    (re.compile(r"\s?([KMGT])i?B/s\b"), "{}b/s"),
    (re.compile(r"\s?([GTPE]?)FLOP/?[sS]?\b"), "{}flops"),
    (re.compile(r"\s?GPU[- ]hours?\b"), "gpu-hours"),
    (re.compile(r"\s?([KMGT])i?B\b"), "{}b"),
    (re.compile(r"\s?(?:ms|msec|milliseconds?)\b"), "ms"),
    (re.compile(r"\s?(?:µs|us|microseconds?)\b"), "us"),
    (re.compile(r"\s?(?:s|sec|secs|seconds?)\b"), "s"),
    (re.compile(r"\s?(?:min|mins|minutes?)\b"), "min"),
    (re.compile(r"\s?(?:h|hrs?|hours?)\b"), "h"),
    (re.compile(r"\s?days?\b"), "days"),
    (re.compile(r"\s(?:fewer|less|more)\s+bits\b"), "bits"),
    (re.compile(r"\s?Elo\b"), "elo"),
]
_CURRENCY = re.compile(r"(?:US)?([$€£])\s?$")
_TEX_AFTER = re.compile(r"\s?(?:\\[A-Za-z]+|\$|\\%|%|\^)")  # a TeX command, "$", "\%" right after: math
_TEX_CMD_END = re.compile(r"\\(?:rightarrow|to|approx|sim|times|leq|geq|pm)$")
_TEX_BEFORE = re.compile(r"(?:\\[A-Za-z]+|[}^_])\s?$")  # "$" closing "\rightarrow", "\pm", "\texttt{@}"
_SCALE = re.compile(r"\s?(K|k|M|B|bn|thousand|million|billion)\b")
_SCALES = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9, "billion": 1e9}
_COMPOUND_OK = re.compile(r"-(?:fold|points?|percent|x|times)\b")  # "16-point", "3-fold"

# Contexts where a unit is a spec, not a result.
_HW = r"(?:[AHBLV]\d{2,3}S?|GB\d{3}|H800|A800|MI\d{3}X?|RTX\s?\d{4}|TPUs?|GPUs?|nodes?|chips?|cards?|accelerators?)\b"
_X_SPEC_AFTER = re.compile(rf"\s*(?:{_HW}|downsampl|upsampl|upscal|zoom|magnif)", re.I)
_GB_SPEC_BEFORE = re.compile(rf"{_HW}\s*-?\s*$")
_GB_SPEC_AFTER = re.compile(
    r"\s*(?:(?!(?:per|of|on|in|for|each|across|and|than|vs)\b)[A-Za-z-]+\s+)?(?:GPUs?|cards?)\b"
)  # "24 GB consumer GPU"
# "a laptop with 16GB of unified memory", "a GPU's 80 GB": what the hardware has, not a result.
_DEVICE_SPEC_BEFORE = re.compile(
    r"(?:\b(?:laptops?|phones?|smartphones?|devices?|machines?|GPUs?|cards?|nodes?|servers?|desktops?)\s+with|"
    r"\b(?:GPU|chip|card|accelerator|device)(?:'s|’s))\s*(?:only\s+|just\s+)?$",
    re.I,
)
_CV_AFTER = re.compile(r"\s*(?:stratified\s+)?cross[- ]?validat", re.I)
_READ_TIME = re.compile(r"\s*(?:read\b|·)")
# Spec-sheet numbers: what the hardware is rated for ("your GPU's 312 TFLOPS", "the H100 delivers 989 TFLOPS",
# "each B200 has 192 GB of HBM3e", "peak bandwidth of 3.35 TB/s"), not what a paper measured ("the kernel hits
# 740 TFLOPS", "peak memory of 40 GB").
_SPEC_UNITS = ("flops", "b/s", "kb", "mb", "gb", "tb")
_SPEC_BEFORE = re.compile(
    rf"(?:{_HW}(?:'s|’s)\s+(?:\w+\s+){{0,2}}|\b{_HW}\s+(?:SXM\d?\s+|PCIe\s+)?(?:has|have|offers?|delivers?|provides?|"
    r"features?|packs?|with|rated\s+at)\s+(?:[\w-]+\s+){0,2}?)(?:up\s+to\s+|about\s+|roughly\s+|[~≈]\s*)?$",
    re.I,
)
# ... and for rates only (FLOPS, bandwidth): "peak bandwidth of 3.35 TB/s", "a theoretical 989 TFLOPS"
_RATED_BEFORE = re.compile(
    r"\b(?:peak|rated|theoretical|nominal|advertised)\s+(?:[\w-]+\s+){0,2}?(?:of\s+|is\s+|at\s+)?"
    r"(?:up\s+to\s+|about\s+|roughly\s+|[~≈]\s*)?$",
    re.I,
)
_SPEC_AFTER = re.compile(r"\s*(?:of\s+)?(?:peak|theoretical)\b", re.I)
# A formula's coefficient: "N* = 2.71×10⁻³ · M + 87M" multiplies a variable; it is not a measurement.
_COEFF_AFTER = re.compile(r"\s*[·⋅∙*]\s*[A-Za-z(]")

# How a bare (unitless) number can still be a claim.
_CORR_SYM = re.compile(
    r"(?:\b(?P<name>Spearman|Pearson|Kendall)(?:'s)?\s+)?(?P<sym>ρ|rho|R²|R\^2|r²|\br|τ|tau|κ|kappa)"
    r"\s*(?:=|≈|:|of|is|at)?\s*[~≈]?\s*$"
)
_CORR_UNIT = {"ρ": "rho", "rho": "rho", "r": "r", "R²": "r2", "R^2": "r2", "r²": "r2", "τ": "tau", "tau": "tau"}
_CORR_UNIT.update({"κ": "kappa", "kappa": "kappa"})
_CORR_NAME_UNIT = {"spearman": "rho", "pearson": "r", "kendall": "tau"}
_METRIC_WORD = (
    r"(?:average\s+|mean\s+|overall\s+|macro[- ]|micro[- ])?(?:scores?|accuracy|F1|BLEU|ROUGE[-\w]*|EM|exact[- ]match|"
    r"nDCG(?:@\d+)?|MRR|AUC|AUROC|mAP|FID|perplexity|PPL|Kendall|Spearman|Pearson|correlation|win[- ]rate|"
    r"pass@\d+|CKA|similarity|Elo|reward|recall(?:@\d+)?|precision|WER)"
)
_METRIC_AFTER = re.compile(rf"\s*{_METRIC_WORD}\b", re.I)
_METRIC_BEFORE = re.compile(rf"\b{_METRIC_WORD}\b", re.I)
_LINK_BEFORE = re.compile(
    r"(?:\b(?:is|was|are|were|of|at|to|by|reaches|reached|achieves|achieved|attains|attained|scores|scored|"
    r"hits|from)|=|:|≈|~)\s*[~≈]?\s*$",
    re.I,
)
_BENCH = (
    r"(?:MMLU(?:-Pro)?|GSM8K|GSM-Hard|MATH(?:-500)?|HumanEval\+?|MBPP\+?|ARC(?:-Challenge|-Easy)?|HellaSwag|"
    r"WinoGrande|TruthfulQA|GPQA(?:\s+Diamond)?|AIME|SWE-bench(?:\s+Verified)?|LiveCodeBench|BBH|BIG-Bench|"
    r"AlpacaEval|MT-Bench|Arena-Hard|Chatbot Arena|ImageNet|COCO|WikiText(?:-2|-103)?|C4|OpenWebText|LAMBADA|"
    r"PIQA|SQuAD|Natural Questions|TriviaQA|HotpotQA|MS MARCO|BEIR|LibriSpeech|WMT\d*|FActScore|RULER|"
    r"LongBench|IFEval|MMMU|VQAv2|DocVQA|ChartQA|MuJoCo|OpenWebMath)"
)
_BENCH_RE = re.compile(rf"\b{_BENCH}\b")
_BENCH_AFTER = re.compile(rf"\s+on\s+(?:the\s+)?{_BENCH}\b")
_COUNT_AFTER = re.compile(
    r"\s*(?:tokens?|steps?|layers?|items?|models?|GPUs?|nodes?|examples?|prompts?|samples?|categories|experts?|"
    r"seeds?|epochs?|parameters?|params|heads?|SAEs?|adapters?|tasks?|benchmarks?|languages?|organi[sz]ations?|"
    r"documents?|images?|questions?|problems?|annotators?|participants?|judges?|runs?|trials?|users?|"
    r"[AHBV]\d{2,3}s?)\b",
    re.I,
)
_YEAR = re.compile(r"(?:19|20)\d\d")
_ARXIV = re.compile(r"\d{4}\.\d{4,5}")

# ----------------------------------------------------------------------------- cue words

# Specific metric cues (multi-word alternatives first, so they win at the same position).
_SPECIFIC = [
    ("utilization", r"(?:model\s+)?flops\s+utili[sz]ation|utili[sz]ation|(?-i:MFU|HFU)|GPU[- ](?:is\s+)?active"),
    ("utilization", r"of\s+peak|busy"),
    ("efficiency", r"(?:sample|data|parameter|compute|token)\s+efficiency|efficien\w*"),
    ("error", r"(?:word\s+)?error\s+rates?|calibration\s+error|false[- ](?:positive|negative)\w*|failure\s+rates?"),
    ("error", r"mean\s+absolute\s+error|errors?|hallucinat\w*|(?-i:WER|CER|MAE|RMSE)|Brier(?:\s+scores?)?"),
    ("error", r"underestimat\w*|overestimat\w*"),
    (
        "accuracy",
        r"win[- ]rates?|(?:attack\s+|task\s+|edit\s+)?success(?:\s+rates?)?|exact[- ]match|pass@\d+|nDCG(?:@\d+)?|"
        r"recall(?:@\d+)?|benchmark\s+scores?",
    ),
    ("compute", r"GPU[- ]?(?:hours?|time|days?)|compute|computations?|FLOPs?|petaflop\w*"),
    ("time", r"(?:training|wall[- ]?clock|run|tuning)\s+time"),
    ("latency", r"latenc(?:y|ies)(?!\s+SLO)|(?-i:TTFT|TPOT)|time[- ]to[- ]first[- ]token|step\s+time|response\s+time"),
    ("throughput", r"throughput|goodput|requests|(?-i:QPS)|bandwidth|serves|tokens\s+per\s+second|traffic"),
    ("speedup", r"speed[- ]?ups?|speeds?\s+up|faster|accelerat\w*|quicker"),
    ("memory", r"memory|footprint|(?-i:VRAM|RAM)|KV[- ]?cache|on[- ]disk|disk|storage"),
    ("cost", r"costs?|cheaper|prices?|pricing|(?<!per\s)dollars?|expensive"),
    ("energy", r"energy|(?:rated|peak|GPU)\s+power|power\s+(?:draw|cap\w*|consumption)|joules?|watts?|carbon"),
    ("compression", r"compress\w*|bits\s+per\s+(?:weight|parameter)"),
    ("perplexity", r"perplexit(?:y|ies)|(?-i:PPL)"),
    ("correlation", r"correlat\w*|Spearman|Pearson|Kendall|ρ|R²|κ|kappa"),
    ("similarity", r"similar\w*|identical|(?-i:CKA)|cosine|overlap"),
    (
        "accuracy",
        r"accura\w*|(?-i:F1|BLEU|ROUGE[-\w]*|EM|MRR|AUC|AUROC|mAP|FID|Elo)|scores?|scored|precision|quality|"
        r"performance|solves|solved|resolves|resolved|retain(?:s|ed|ing)?|agree\w*|prefer\w*|detect\w*|flags|arena",
    ),
    ("sparsity", r"sparsity|sparse|prun\w*|activates|activated"),
]
_SPECIFIC_RE = re.compile("|".join(f"(?P<k{i}>\\b(?:{p})(?!\\w))" for i, (_, p) in enumerate(_SPECIFIC)), re.I)
_SPECIFIC_KIND = {f"k{i}": kind for i, (kind, _) in enumerate(_SPECIFIC)}

# Generic direction words: what moved is not named, only that it went up or down.
_UP_WORDS = (
    r"improv\w*|gains?|gained|gaining|better|boost\w*|higher|increas\w*|outperform\w*|more|advantage|lifts?|"
    r"lifted|rais\w*|climb\w*|rises?|rose|extra|surpass\w*|beats?|exceed\w*|greater|larger"
)
_DOWN_WORDS = (
    r"reduc\w*|smaller|fewer|less|lower\w*|cuts?|cutting|shrinks?|shrunk|decreas\w*|drops?|dropped|falls?|fell|"
    r"cheaper|saves?|saving|savings|skips?|skipping|down|halv\w*|eliminat\w*|trims?|loses|lose|losing|lost|loss|"
    r"slash\w*"
)
# A sentence that opens with the quantity that moved ("Throughput improves ...", "Median latency is ...").
_QUANTITY_NOUN = re.compile(
    r"(?:\w+\s+){0,2}?(?:throughput|latency|time-to-first-token|memory|energy|cost|perplexity|accuracy|win rate|"
    r"error rate|utili[sz]ation|MFU|efficiency|sparsity)\b",
    re.I,
)
_GENERIC_RE = re.compile(rf"\b(?:(?P<up>{_UP_WORDS})|(?P<down>{_DOWN_WORDS}))\b", re.I)

_UNIT_KIND = {
    "rho": "correlation",
    "r": "correlation",
    "r2": "correlation",
    "tau": "correlation",
    "kappa": "correlation",
    "ppl": "perplexity",
    "$": "cost",
    "€": "cost",
    "£": "cost",
    "tokens/s": "throughput",
    "req/s": "throughput",
    "it/s": "throughput",
    "ms": "latency",
    "us": "latency",
    "s": "latency",
    "min": "time",
    "h": "time",
    "days": "time",
    "gpu-hours": "compute",
    "bits": "compression",
    "elo": "accuracy",
    "rank": "ranking",
}
_UP_KINDS = {"speedup", "throughput", "efficiency", "improvement"}
_DOWN_KINDS = {"reduction", "compression"}
_GENERIC_KINDS = {"improvement", "reduction"}

# Window edges: a clause ends at these marks; an after-window also at these conjunctions.
# "... at equal compute and reduces forgetting by 38%": "and <verb>" starts a new clause.
_BEFORE_STOP = re.compile(rf"[;:,)]|—|\s[–-]\s|\band\s+(?=(?:{_UP_WORDS}|{_DOWN_WORDS})\b)", re.I)
_AFTER_STOP = re.compile(
    r"[;:,()]|—|\s[–-]\s|\b(?:and|with|while|that|which|but|yet|whereas|vs\.?|versus|compared|than|instead|over)\b"
)
_AFTER_TOKENS, _BEFORE_TOKENS, _BARE_BEFORE_TOKENS = 7, 10, 4

# Qualifiers, matched at the end of the text just before the number (they may stack: "up to ~12×").
_QUALIFIERS = [
    ("up to", re.compile(r"\bup\s+to\s*$", re.I)),
    (
        "about",
        re.compile(
            r"(?:[~≈∼]|\$?\\(?:sim|approx)\$?|\b(?:about|approximately|approx\.|around|roughly|circa|some))\s*$", re.I
        ),
    ),
    ("nearly", re.compile(r"\b(?:nearly|almost)\s*$", re.I)),
    ("at least", re.compile(r"(?:\bat\s+least|≥|>=)\s*$", re.I)),
    ("at most", re.compile(r"(?:\bat\s+most|≤|<=)\s*$", re.I)),
    ("over", re.compile(r"(?:\b(?:over|more\s+than|above|exceeding|beyond)|>)\s*$", re.I)),
    ("under", re.compile(r"(?:\b(?:under|less\s+than(?:\s+an?)?|below|fewer\s+than)|<)\s*$", re.I)),
    ("within", re.compile(r"\bwithin\s*$", re.I)),
    ("only", re.compile(r"\b(?:only|just|merely)\s*$", re.I)),
]
# Gaps after a claim that make the next number continue it (it then takes the same kind).
_APPOSITION = re.compile(r"[^;—:()]*,\s*(?:a|an|about|roughly|around|or|nearly|almost|approximately)?\s*[~≈]?\s*")
_PAREN_AFTER = re.compile(r"[^;—:()]*\(\s*(?:\S+\s+){0,2}[~≈=]?\s*")
_SHARE_KINDS = ("", "sparsity", "compute", "memory", "other")
_MODEL_SHARE = re.compile(
    r"\s*of\s+(?:the\s+|all\s+|its\s+|their\s+)?(?:attention\s+|intermediate\s+)?(?:heads|neurons|experts|layers|weights)\b",
    re.I,
)
_PARALLEL = re.compile(r"[^;—:()]*\b(?:and|or)\s+(?:by\s+|to\s+)?(?:up\s+to\s+)?")
# The same quantity moving on: "a 2.6x latency reduction, which falls to 1.1x"; "the decode advantage grows to 7.5x".
_CONTINUES = re.compile(
    r"[^;:()]*\b(?:which|advantage|gap|gain|lead|margin)\s+(?:then\s+)?(?:falls?|drops?|rises?|grows?|widens?|"
    r"narrows?|shrinks?|increases?|decreases?|climbs?)\s+(?:further\s+)?to\s*[~≈]?\s*",
    re.I,
)
_QUALIFIER_TAIL = re.compile(
    r"(?:\b(?:up\s+to|(?:less|more|fewer)\s+than(?:\s+an?)?|at\s+least|at\s+most)|[~≈<>≤≥])\s*$", re.I
)
_LOSSLESS = re.compile(r"\b(near[- ]lossless|lossless)\b", re.I)

_BASELINE_BEFORE = re.compile(
    r"(?<!fewer )(?<!more )(?<!less )(?<!greater )(?<!longer )(?<!shorter )(?<!larger )(?<!smaller )"
    r"\b(?:vs\.?|versus|compared\s+(?:to|with)|relative\s+to|than|instead\s+of|up\s+from|down\s+from|against)\s+"
    r"(?:the\s+)?(?:\S+'s\s+)?(?:[~≈]\s*|(?:about|roughly|approximately)\s+)?(?:US)?[$€£]?\s?$",
    re.I,
)
_FROM_BEFORE = re.compile(r"\bfrom\s+(?:[~≈]\s*)?(?:US)?[$€£]?\s?$", re.I)
# "from 56.7% (majority@64) to 70.0%": a short parenthetical may name the setting of the first value
_TO_GAP = re.compile(r"\s*(?:\([^()]{1,40}\)\s*)?to\s+(?:[~≈]\s*)?(?:US)?[$€£]?\s?$", re.I)
_VS_GAP = re.compile(r"\s*(?:vs\.?|versus)\s+$", re.I)
_ARROW_GAP = re.compile(r"\s*(?:->|→|⟶|=>|\$?\\(?:rightarrow|to|longrightarrow)\$?)\s*")  # TeX too
_CHANGE_VERB = re.compile(
    r"\b(?:improv|ris|rose|fall|fell|drop|increas|decreas|climb|lower|boost|rais|lift|reduc|cut|go|went|grow|grew|"
    r"shrink|jump)\w*\s+from\s+\S*$",
    re.I,
)
_BETWEEN = re.compile(r"\bbetween\s+(?:[~≈]\s*)?(?:US)?[$€£]?\s?$", re.I)
_FACTOR_OF = re.compile(r"\bfactor\s+of\s*$", re.I)
_RANK_BEFORE = re.compile(r"(?:^|[\s(])#$")
_RANK_BAD = re.compile(r"\b(?:PR|issue|no|item|number)\s*#$", re.I)

# Subject and context.
_HARDWARE_RE = re.compile(
    r"\b(?:[AHB]\d{3}|GB\d{3}|H800|A800|V100|L40S?|MI\d{3}X?|RTX\s?\d{4}|TPU(?:\s?v\d\w*)?|Gaudi\s?\d|Blackwell|"
    r"Hopper|Ampere|iPhone\s?\d+|Jetson\s\w+|Apple\s+M\d\w*)\b"
)
_CTXLEN_RE = re.compile(r"\b\d+(?:\.\d+)?[KkM](?:\s+|-)(?:token\s+)?context\b|\bat\s+\d+(?:\.\d+)?[KkM]\s+tokens\b")
_COMPARED_LEAD = re.compile(r"^\s*(?:compared\s+(?:to|with)|relative\s+to|unlike|versus|vs\.?|against)\s+[^,]*,", re.I)
_SUBJECT_STOP = {
    "we", "our", "the", "this", "these", "a", "an", "it", "in", "on", "for", "with", "at", "by", "to", "and",
    "gpu", "gpus", "cpu", "llm", "llms", "kv", "moe", "ar", "rl", "mlp", "rag", "api", "sota", "ppl", "mfu",
    "nvidia", "meta", "fair", "kl", "icml", "neurips", "iclr", "gemm", "json", "sft", "ppo", "dpo", "grpo", "cxl",
    "rdma", "slo", "slos", "mla", "mha", "gqa", "cuda", "hbm", "ssd", "nvme", "vlm", "vlms", "lora", "peft",
    "google", "openai", "anthropic", "stanford", "mit", "jhu", "paper", "sync",
}  # fmt: skip


# ----------------------------------------------------------------------------- internals


@dataclass
class _Num:
    start: int  # span shown to users (includes "$", "#", "from ... to")
    end: int
    value: float
    hi: float | None = None
    unit: str = ""
    sign: str = ""
    sci: bool = False
    decimal: bool = False
    approx: bool = False
    claim: bool = False
    how: str = ""  # why a bare number counts: sign, sci, corr, vs, approx, metric-after, bench, metric-before
    kind: str = ""
    baseline: float | None = None
    consumed: bool = False  # used as another claim's baseline


def _finite(n: _Num) -> bool:
    """A non-finite value (a 400-digit number, "9 × 10^300 x" scaled past float range) is never a claim; a
    non-finite baseline is dropped."""
    if n.baseline is not None and not math.isfinite(n.baseline):
        n.baseline = None
    return math.isfinite(n.value) and (n.hi is None or math.isfinite(n.hi))


def _to_float(s: str) -> float:
    return float(s.replace(",", ""))


def _tokens(s: str) -> int:
    return len(s.split())


def _find_numbers(sent: str) -> list[_Num]:
    """Every number in the sentence that is not part of a name, version, compound or id."""
    masked = _CITATION.sub(lambda m: " " * len(m.group()), sent)
    nums: list[_Num] = []
    for m in _ATOM.finditer(masked):
        start, end = m.start(), m.end()
        a, b, sign = m.group("a"), m.group("b"), m.group("sign") or ""
        prev = masked[start - 1] if start else " "
        tex = prev.isalpha() and _TEX_CMD_END.search(masked, max(0, start - 20), start)  # "\rightarrow92.5%"
        if (
            (prev.isalnum() and not tex)
            or prev in "._@'’/^\\×"
            or (prev in "-–" and start > 1 and masked[start - 2].isalnum())
        ):
            continue
        if _ARXIV.fullmatch(a) or (sign == "-" and prev.isdigit()):
            continue
        rest = masked[end:]
        if re.match(r"\.\d", rest):  # 0.5.12
            continue
        value = _to_float(a)
        n = _Num(start=start, end=end, value=value, sign=sign, decimal="." in a)
        if sign in ("−", "-"):
            n.value = -value
        if m.group("sci"):
            exp = m.group("sci").translate(_SUPER)
            exp = re.sub(r"[^\d-]", "", exp.split("10", 1)[1])
            if abs(int(exp)) > 300:  # "3 × 10^999x": no float holds it, and no measurement is that size
                continue
            n.value *= 10 ** int(exp)
            n.sci = n.decimal = True
        before = masked[max(0, start - 60) : start]  # anchored look-behinds only need the tail
        # currency ($1,500, $2.1M) and leaderboard rank (#1)
        cur = _CURRENCY.search(before)
        if cur and cur.group(1) == "$" and (_TEX_AFTER.match(rest) or _TEX_BEFORE.search(before[: cur.start()])):
            cur = None  # "$3.2\times$", "$\rightarrow$ 202", "MRR$\texttt{@}$5": TeX math delimiters, not dollars
        if cur:
            n.unit, n.start = cur.group(1), start - (len(before) - cur.start())
            sc = _SCALE.match(rest)
            if sc:
                n.value *= _SCALES[sc.group(1).lower()]
                n.end += sc.end()
                rest = masked[n.end :]
        elif _RANK_BEFORE.search(before) and not _RANK_BAD.search(before) and not b and value <= 100:
            n.unit, n.start = "rank", start - 1
        if b is not None:
            n.hi = _to_float(b)
            n.decimal = n.decimal or "." in b
            if m.group("u1") and m.group("u1").strip() == "%":
                n.unit = n.unit or "%"
                pm = re.match(r"\s?%", masked[end:])
                if pm:
                    n.end += pm.end()
        # unit after the number
        if not n.unit:
            for rx, name in _UNITS:
                um = rx.match(rest)
                if um:
                    n.unit = name.format(um.group(1).lower()) if "{}" in name else name
                    n.end += um.end()
                    break
            if not n.unit and m.group("u1") and m.group("u1").strip() in "×x":
                n.unit = "x"
        rest = masked[n.end :]
        if not n.unit:
            if rest[:1].isalnum() or (rest[:1] in ("-", "‑") and not _COMPOUND_OK.match(rest)) or rest[:1] == "×":
                continue  # 8B, 128K, 4o, rank-1, 4-bit, 224×224
        elif n.unit not in ("$", "€", "£", "rank") and rest[:1].isalnum():
            continue
        if (
            rest[:1] in ("-", "‑")
            and rest[1:2].isalpha()
            and not _COMPOUND_OK.match(rest)
            and n.unit not in ("points", "x")
        ):
            continue
        # units that are specs here, not results
        if n.unit == "x" and _X_SPEC_AFTER.match(rest):
            continue
        if n.unit == "x" and _CV_AFTER.match(rest):
            continue  # "10-fold cross-validation" is a protocol, not a result
        if (
            n.unit.endswith("b")
            and n.unit[:1] in "kmgt"
            and (_GB_SPEC_BEFORE.search(before) or _GB_SPEC_AFTER.match(rest))
        ):
            continue
        if n.unit in ("kb", "mb", "gb", "tb") and _DEVICE_SPEC_BEFORE.search(before):
            continue
        rate = n.unit.endswith(("flops", "b/s"))
        if n.unit.endswith(_SPEC_UNITS) and (
            _SPEC_BEFORE.search(before) or (rate and (_RATED_BEFORE.search(before) or _SPEC_AFTER.match(rest)))
        ):
            continue  # a spec sheet's number, not a result
        if _COEFF_AFTER.match(rest):
            continue  # a coefficient in a formula
        if n.unit == "min" and (_READ_TIME.match(rest) or before.rstrip().endswith("·")):
            continue
        if n.unit == "s" and _YEAR.fullmatch(a):
            continue  # 1990s
        n.approx = bool(re.search(r"[~≈∼]\s*$", before))
        nums.append(n)
    return nums


def _pair_up(sent: str, nums: list[_Num]) -> list[_Num]:
    """Merge "from A to B" and "A vs B" pairs into one number with a baseline."""
    out: list[_Num] = []
    for n in nums:
        p = out[-1] if out else None
        if (
            p
            and p.hi is None
            and p.baseline is None
            and _TO_GAP.fullmatch(sent[p.end : n.start])
            and _FROM_BEFORE.search(sent[max(0, p.start - 40) : p.start])
        ):
            n.baseline, n.start = p.value, p.start
            n.unit = n.unit or p.unit
            n.decimal = n.decimal or p.decimal
            n.how = "fromto"
            out[-1] = n
            continue
        if (
            p
            and p.hi is None
            and (not p.unit or p.unit == n.unit)
            and n.unit
            and re.fullmatch(r"\s*and\s+(?:[~≈]\s*)?", sent[p.end : n.start])
            and _BETWEEN.search(sent[max(0, p.start - 40) : p.start])
        ):
            p.hi, p.unit, p.end = n.value, n.unit, n.end  # "between 0.6 and 1.4 points", "between 1.6x and 2.2x"
            continue
        if (
            p
            and p.hi is None
            and p.baseline is None
            and p.unit == n.unit
            and _ARROW_GAP.fullmatch(sent[p.end : n.start])
        ):
            n.baseline, n.start, n.how = p.value, p.start, "fromto"  # "78.7% → 92.5%", "89.1% -> 91.9%"
            n.decimal = n.decimal or p.decimal
            out[-1] = n
            continue
        if p and not p.unit and not n.unit and _VS_GAP.fullmatch(sent[p.end : n.start]):
            p.baseline, p.how = n.value, "vs"
            continue
        out.append(n)
    # a range "A-B" / "A to B" preceded by "from" is a change, not a range
    for n in out:
        if (
            n.hi is not None
            and _FROM_BEFORE.search(sent[max(0, n.start - 40) : n.start])
            and re.search(r"\bto\b", sent[n.start : n.end])
        ):
            n.baseline, n.value, n.hi, n.how = n.value, n.hi, None, "fromto"
    return out


def _decide_bare(sent: str, n: _Num, prev_end: int) -> None:
    """Mark n as a claim when it has a unit or, unitless, a metric signal (see module docstring)."""
    if n.unit:
        n.claim = True
        return
    before, after = sent[max(0, n.start - 80) : n.start], sent[n.end : n.end + 80]
    if _FACTOR_OF.search(before):
        n.unit, n.claim = "x", True
        return
    a_int = float(n.value).is_integer() and not n.decimal
    if a_int and _YEAR.fullmatch(str(int(abs(n.value)))) and not n.sign:
        return
    corr = _CORR_SYM.search(before)
    if corr and abs(n.value) <= 1 and n.decimal:
        name = (corr.group("name") or "").lower()
        n.unit = _CORR_NAME_UNIT.get(name) or _CORR_UNIT.get(corr.group("sym"), "r")
        n.claim, n.how = True, "corr"
        return
    if n.sign in ("+", "−", "-", "±") or n.sci:
        n.claim, n.how = True, n.how or ("sci" if n.sci else "sign")
        return
    if n.how == "vs" or (
        n.how == "fromto"
        and (_METRIC_BEFORE.search(sent[prev_end : n.start]) or _CHANGE_VERB.search(sent[prev_end : n.start]))
    ):
        n.claim = True
        return
    if _COUNT_AFTER.match(after):
        return
    if n.approx and n.decimal:
        n.claim, n.how = True, "approx"
    elif _METRIC_AFTER.match(after):
        n.claim, n.how = True, "metric-after"
    elif _BENCH_AFTER.match(after):
        n.claim, n.how, n.kind = True, "bench", "accuracy"
    else:
        window = _clause(sent, prev_end, n.start, _BEFORE_STOP, 8, before=True)
        if _METRIC_BEFORE.search(window) and _LINK_BEFORE.search(before):
            n.claim, n.how = True, "metric-before"


def _clause(sent: str, lo: int, hi: int, stop: re.Pattern, max_tokens: int, before: bool) -> str:
    """The clause between lo and hi, cut at the stop marks nearest the number and to max_tokens."""
    seg = sent[lo:hi]
    if before:
        cuts = [m.end() for m in stop.finditer(seg)]
        seg = seg[cuts[-1] :] if cuts else seg
        toks = seg.split()
        return " ".join(toks[-max_tokens:]) if toks else ""
    return " ".join(seg[: _after_end(seg)].split()[:max_tokens])


def _after_end(seg: str) -> int:
    """Where the after-window of a number ends inside seg (the text right after the number)."""
    m = _AFTER_STOP.search(seg)
    return m.start() if m else len(seg)


def _cues(window: str, rx: re.Pattern, from_end: bool) -> list[tuple[int, re.Match]]:
    """(distance in tokens from the number, match) for every cue in the window."""
    out = []
    for m in rx.finditer(window):
        dist = _tokens(window[m.end() :]) if from_end else _tokens(window[: m.start()])
        out.append((dist, m))
    return out


def _specific(m: re.Match) -> str:
    return _SPECIFIC_KIND[m.lastgroup]


def _first_specific(text: str) -> str:
    m = _SPECIFIC_RE.search(text)
    return _specific(m) if m else ""


def _assign_kinds(sent: str, claims: list[_Num], prev_kind: tuple[str, str, str]) -> None:
    nexts = [c.start for c in claims[1:]] + [len(sent)]
    for i, c in enumerate(claims):
        next_start = nexts[i]
        # a cue right after the previous claim belongs to it: "22× less memory and a 16-point ..."
        prev_end = 0 if i == 0 else claims[i - 1].end + _after_end(sent[claims[i - 1].end : c.start])
        n_before = _BARE_BEFORE_TOKENS if c.how in ("sign", "sci", "approx", "vs") else _BEFORE_TOKENS
        bwin = _clause(sent, prev_end, c.start, _BEFORE_STOP, n_before, before=True)
        bwin = _QUALIFIER_TAIL.sub("", bwin)  # "adds less than 5%": "less" is a qualifier here
        awin = _clause(sent, c.end, next_start, _AFTER_STOP, _AFTER_TOKENS, before=False)
        c._bwin, c._awin, c._span = bwin, awin, sent[c.start : c.end]  # type: ignore[attr-defined]
        kind = c.kind or _UNIT_KIND.get(c.unit, "")
        if not kind and c.unit.endswith("flops"):
            kind = "compute"
        elif not kind and c.unit.endswith("b/s"):
            kind = "throughput"
        elif not kind and c.unit in ("kb", "mb", "gb", "tb"):
            kind = "memory"
        if not kind:
            # 1. a specific metric word nearby; after the number is preferred on near-ties
            cands = [(d, m) for d, m in _cues(awin, _SPECIFIC_RE, from_end=False)]
            adjacent_generic = bool(_GENERIC_RE.match(awin))  # "with 3.2× fewer rollout tokens"
            cands += [
                (d + 1.5, m) for d, m in _cues(bwin, _SPECIFIC_RE, from_end=True) if not (adjacent_generic and d > 2)
            ]
            if c.unit == "points":  # points are score deltas: ignore "halves the KV cache with a 0.7-point drop"
                cands = [t for t in cands if _specific(t[1]) in ("accuracy", "error", "perplexity", "similarity")]
            if cands:
                kind = _specific(min(cands, key=lambda t: t[0])[1])
        if not kind and c.unit == "points":
            kind = "accuracy"  # points are benchmark-score deltas unless another metric is named
        if not kind and i > 0 and claims[i - 1].kind not in ("", *_GENERIC_KINDS, "other"):
            # apposition: "1,200 tokens/s on one H100, a 1.8× gain" / "230 ms, about 2.5x lower"
            gap = sent[claims[i - 1].end : c.start]
            same_unit = claims[i - 1].unit == c.unit
            if (
                _APPOSITION.fullmatch(gap)  # ... or a parenthetical: "~3x better sparsity (L0 ≈ 50 vs 150)"
                or _PAREN_AFTER.fullmatch(gap)
                or (same_unit and _PARALLEL.fullmatch(gap))  # ... or "by 1.7x over A and by 1.3x over B"
                or (same_unit and _CONTINUES.fullmatch(gap))  # ... or "..., which falls to 1.1x"
            ):
                kind = claims[i - 1].kind
        generic = ""
        if c.how != "fromto":  # a from→to value is a level, not a gain
            g = _cues(awin, _GENERIC_RE, False) + [(d + 1.5, m) for d, m in _cues(bwin, _GENERIC_RE, True)]
            if g:
                generic = "improvement" if min(g, key=lambda t: t[0])[1].lastgroup == "up" else "reduction"
        if not kind and (generic or c.how == "fromto"):
            # the sentence may open with the quantity: "Throughput improves ..., a 1.8× gain", or
            # "The accuracy of the teacher's targets on student prefixes falls from 65% to 51%"
            opening = _QUANTITY_NOUN.match(sent[: claims[0].start].lstrip())
            kind = (_first_specific(opening.group()) if opening else "") or generic
        if not kind and c.how == "fromto":  # the clause's subject names what moved, however long the clause
            kind = _first_specific(_clause(sent, prev_end, c.start, _BEFORE_STOP, 40, before=True))
        if c.unit == "%" and _MODEL_SHARE.match(sent[c.end : c.end + 60]) and kind not in _SHARE_KINDS:
            kind = "other"  # a share of the model is setup: "Localizing 75% of heads ... retains 96% of accuracy"
        if not kind and c.unit in ("%", "", "points") and _BENCH_RE.search(sent[c.end : c.end + 40]):
            kind = "accuracy"
        if not kind and prev_kind:
            # same paragraph: "Model FLOPs Utilization answers ... why 30–70% is the real-world range", or a
            # ratio continuing the previous claim: "Plaid reported a 64× compute gap. RePlaid closes it to 20×"
            topic, last_kind, last_unit = prev_kind
            kind = topic or (last_kind if last_unit == c.unit == "x" else "")
        if not kind and c.how in ("approx", "vs") and 0 < c.value < 1:
            kind = "accuracy"  # a bare fraction reported as a level ("both at ~0.58") is a score
        if not kind:
            kind = "speedup" if c.unit == "x" else "other"
        if kind == "perplexity" and not c.unit:
            c.unit = "ppl"
        if kind == "correlation" and not c.unit:
            names = re.search(r"Spearman|Pearson|Kendall", bwin + " " + awin)
            c.unit = _CORR_NAME_UNIT[names.group().lower()] if names else ""
        c.kind = kind


def _direction(c: _Num) -> str:
    if c.sign == "+":
        return "up"
    if c.sign in ("−", "-"):
        return "down"
    if c.baseline is not None and c.how == "fromto":
        return "up" if c.value > c.baseline else "down" if c.value < c.baseline else ""
    own = _GENERIC_RE.search(c._span)  # type: ignore[attr-defined]
    if own:
        return "up" if own.lastgroup == "up" else "down"
    g = _cues(c._awin, _GENERIC_RE, False) + [(d + 1.5, m) for d, m in _cues(c._bwin, _GENERIC_RE, True)]  # type: ignore[attr-defined]
    if g:
        return "up" if min(g, key=lambda t: t[0])[1].lastgroup == "up" else "down"
    if c.kind in _UP_KINDS:
        return "up"
    if c.kind in _DOWN_KINDS:
        return "down"
    return ""


def _qualifier(sent: str, c: _Num) -> str:
    found: list[str] = []
    before = sent[max(0, c.start - 60) : c.start]
    if c.unit != "$":
        before = re.sub(r"\$\s*$", "", before)  # "up to $3.2\times$": the TeX math delimiter is not a qualifier's
    if c.how == "fromto":
        before = re.sub(r"\bfrom\s*$", "", before[: before.rfind("from") + 4] if "from" in before else before)
    for _ in range(3):
        for name, rx in _QUALIFIERS:
            m = rx.search(before)
            if m:
                found.insert(0, name)
                before = before[: m.start()]
                break
        else:
            break
    if c.sign == "±":
        found.append("±")
    near = " ".join(sent[max(0, c.start - 80) : c.start].split()[-6:]) + " " + " ".join(sent[c.end :].split()[:3])
    lm = _LOSSLESS.search(near)
    if lm:
        found.append(lm.group(1).lower().replace(" ", "-"))
    return " ".join(dict.fromkeys(found))  # "up to about", "within ±": one phrase, read left to right


def _subject(sent: str, c: _Num) -> str:
    after = sent[c.end :]
    # 1. a model named right after the number: "~6.17x lossless speed-up for Qwen3-8B"
    m = re.match(r"[^.;—,]{0,30}?\b(?:for|on|in|with|of)\s+", after)
    if m:
        mm = _MODEL_RE.match(after, m.end())
        if mm and not _BENCH_RE.fullmatch(mm.group()):
            return mm.group().rstrip(".,")
    # 2. a named method at the start of the sentence: "DFlash uses ...", "Stanford's PreFT runs ..."
    lead = _COMPARED_LEAD.sub("", sent[: c.start])
    for tok in lead.split()[:4]:
        word = re.sub(r"(?:'s|’s)$", "", tok.strip(",:;()\"'"))
        if (
            not word
            or word.lower() in _SUBJECT_STOP
            or _HARDWARE_RE.fullmatch(word)
            or _SPECIFIC_RE.fullmatch(word)
            or _BENCH_RE.fullmatch(word)
            or re.fullmatch(r"(?:FP|BF|INT|NF|MX|W|A)\d+\w*", word)
        ):
            continue
        if re.fullmatch(r"[A-Z][A-Za-z0-9]*[A-Z][\w+-]*|[A-Z]{2,}[\w+-]*|[A-Z][a-z]+[A-Z][\w+-]*", word):
            return word
    # 3. a model named earlier in the sentence: "On LLaMA-2-70B, speculative decoding yields ..."
    for mm in _MODEL_RE.finditer(sent, 0, c.start):
        if not _BENCH_RE.fullmatch(mm.group()):
            return mm.group().rstrip(".,")
    return ""


def _context(sent: str, c: _Num, next_start: int) -> str:
    found: list[str] = []
    for region in (sent[c.start : next_start], sent):
        for rx in (_HARDWARE_RE, _CTXLEN_RE, _BENCH_RE):
            found += [m.group() for m in rx.finditer(region)]
        if found:
            break
    return ", ".join(dict.fromkeys(found))


def _link_baselines(sent: str, nums: list[_Num]) -> None:
    """ "87.4% ..., compared to 82.1%": the later number becomes the earlier claim's baseline."""
    for i, c in enumerate(nums):
        if not c.claim or c.consumed or c.baseline is not None:
            continue
        for n in nums[i + 1 :]:
            gap = sent[c.end : n.start]
            if len(gap) > 80:
                break
            same = n.unit == c.unit or (not n.unit and c.unit in ("", "ppl", "points"))
            if _BASELINE_BEFORE.search(gap) and (same or _UNIT_KIND.get(c.unit) == _UNIT_KIND.get(n.unit) == "time"):
                c.baseline = n.value
                n.consumed = True
                break
            if n.claim:
                break


def _extract_sentence(sent: str, prev_kind: tuple[str, str, str]) -> list[Claim]:
    nums = _pair_up(sent, _find_numbers(sent))
    prev_end = 0
    for n in nums:
        _decide_bare(sent, n, prev_end)
        if n.claim:
            prev_end = n.end
    _link_baselines(sent, nums)
    claims = [n for n in nums if n.claim and not n.consumed and _finite(n)]
    _assign_kinds(sent, claims, prev_kind)
    out = []
    for i, c in enumerate(claims):
        next_start = claims[i + 1].start if i + 1 < len(claims) else len(sent)
        out.append(
            Claim(
                value=c.value,
                value_hi=c.hi,
                unit=c.unit,
                kind=c.kind,
                direction=_direction(c),
                qualifier=_qualifier(sent, c),
                subject=_subject(sent, c),
                context=_context(sent, c, next_start),
                baseline=c.baseline,
                text=sent,
                start=c.start,
                end=c.end,
            )
        )
    return out


# ----------------------------------------------------------------------------- public API


def extract_claims(text: str) -> list[Claim]:
    """Every headline number in a title or summary, in reading order."""
    if not text or not _DIGIT.search(text):
        return []
    out: list[Claim] = []
    none = ("", "", "")
    prev, prev_end = none, 0  # (topic the previous sentence opens with, its last claim's kind and unit)
    for s, e in _sentence_spans(text):
        sent = text[s:e]
        if "\n" in text[prev_end:s]:
            prev = none  # context does not cross paragraphs (one blog post per line in index pages)
        found = _extract_sentence(sent, prev) if _DIGIT.search(sent) else []
        out += found
        opening = _QUANTITY_NOUN.match(sent)  # "Model FLOPs Utilization answers ..."
        topic = _first_specific(opening.group()) if opening else ""
        prev = (topic, found[-1].kind, found[-1].unit) if found else (topic, "", "")
        prev_end = e
    return out


def claim_key(item_key: str, field: str, unit: str, value: float, occurrence: int = 1) -> str:
    """A claim's identity across re-extraction: which item and field, what number, which occurrence of it."""
    return f"{item_key}|{field}|{unit}|{value:.6g}|{occurrence}"


def _same_value(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def evaluate(path: Path) -> dict:
    """Precision/recall of extract_claims against a gold JSONL, matching claims on (value, unit, kind)."""
    tp = fp = fn = 0
    errors: list[dict] = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        gold = [(float(g["value"]), g["unit"], g["kind"]) for g in item["claims"]]
        pred = [(c.value, c.unit, c.kind) for c in extract_claims(item["text"])]
        missing = list(gold)
        spurious = []
        for p in pred:
            hit = next((g for g in missing if _same_value(g[0], p[0]) and g[1:] == p[1:]), None)
            if hit is None:
                spurious.append(p)
            else:
                missing.remove(hit)
        tp += len(pred) - len(spurious)
        fp += len(spurious)
        fn += len(missing)
        if missing or spurious:
            errors.append({"id": item.get("id", ""), "text": item["text"], "missing": missing, "spurious": spurious})
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn, "errors": errors}
