"""Headline: which of a finding's claims is its main result, and the phrase a reader sees for it.

One choice serves the site, the newsletter, `export` and `search --json` (issue #14). Pure: claims in, a
Headline out. The method and its measured accuracy are in docs/headlines.md.

Ranking, in short: every claim gets a score from what it measures (its kind), whether it states a change
(a direction or a baseline), the sentence it sits in (result cues such as "achieves", "outperforms",
"reduces ... by", "we show" raise it; setup cues such as "we train on", "a dataset of" lower it), where it
sits (the first claim of a result sentence, later sentences, the title), and whether it names its subject.
Claims that are never a result are excluded before scoring: kind `other` (a bare percentage) and shares of
tokens, data or the model. Conditions ("at 80% utilization"), another method's figures ("compared with a loss
of 4.7 points"), overheads ("adds less than 1%"), tolerances ("within 8% of uniform") and a method's losses
("a 0.7-point drop") weigh less. The best claim wins when its score reaches MIN_SCORE; otherwise there is no
headline (no headline is better than a wrong one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

__all__ = ["Headline", "choose_headline", "format_claim", "headline_text", "qualifier_parts", "score_claim"]


@dataclass(frozen=True)
class Headline:
    value: float
    value_hi: float | None
    unit: str
    kind: str
    direction: str
    baseline: float | None
    text: str  # the phrase a reader sees: "2.6× lower latency (vs batch-1 estimate)"
    claim: Any = None  # the claim (ledger row or claims.Claim) it was made from

    @property
    def qualifier(self) -> str:
        """The claim's qualifier, so `format_claim` (the templates' `claim` filter) reads a Headline too."""
        return getattr(self.claim, "qualifier", "") or ""

    def as_json(self) -> dict:
        """The fields `export` and `search --json` carry."""
        out = asdict(self)
        out.pop("claim")
        return out


# ----------------------------------------------------------------------------- the number as a reader scans it

# Qualifiers as digest.claims writes them, in reading order ("up to about", "within ±", "about lossless"); rows
# stored before #14 joined them with ", " ("within, ±"), which parses the same.
_PREFIXES = ("up to", "about", "nearly", "at least", "at most", "over", "under", "within", "only")
_QUAL_RE = re.compile(r"near-lossless|lossless|±|" + "|".join(re.escape(p) for p in _PREFIXES))
_PREFIX_TEXT = {"about": "~", "at least": "≥", "at most": "≤", "over": ">", "under": "<"}


def qualifier_parts(qualifier: str) -> tuple[list[str], bool, str]:
    """(prefix words in reading order, whether "±" applies, the adjective "lossless"/"near-lossless" or "")."""
    found = _QUAL_RE.findall(qualifier or "")
    adjective = next((q for q in found if q.endswith("lossless")), "")
    return [q for q in found if q in _PREFIXES], "±" in found, adjective


_UNIT_TEXT = {"points": "pts", "ppl": "PPL", "rank": "", "elo": "Elo", "kb": "KB", "mb": "MB", "gb": "GB", "tb": "TB",
              "kb/s": "KB/s", "mb/s": "MB/s", "gb/s": "GB/s", "tb/s": "TB/s", "flops": "FLOPS", "gflops": "GFLOPS",
              "tflops": "TFLOPS", "pflops": "PFLOPS", "eflops": "EFLOPS", "gpu-hours": "GPU-hours"}  # fmt: skip


def _num(v: float) -> str:
    if abs(v) >= 1e9:
        return f"{v / 1e9:.3g}B"  # "$2.1B"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.3g}M"  # "$2.1M"
    return f"{v:,.4g}"


def _number(claim, sign: str = "", times: str = "x") -> str:
    """The value with its unit, range and baseline: '6.17x', '3–10x', 'ρ = 0.55', '76% → 99%', '$2,300'."""
    unit = claim.unit or ""
    if unit == "rho":
        return f"ρ = {_num(claim.value)}"
    if unit == "r2":
        return f"R² = {_num(claim.value)}"
    if unit in ("r", "tau", "kappa"):
        return f"{ {'r': 'r', 'tau': 'τ', 'kappa': 'κ'}[unit] } = {_num(claim.value)}"
    if unit in ("$", "€", "£"):
        text = f"{unit}{_num(claim.value)}"
        if claim.value_hi is not None:
            text += f"–{unit}{_num(claim.value_hi)}"
        return f"{unit}{_num(claim.baseline)} → {text}" if claim.baseline is not None else text
    shown = _UNIT_TEXT.get(unit, unit).replace("x", times) if unit == "x" else _UNIT_TEXT.get(unit, unit)
    sep = "" if unit in ("x", "%", "rank") else " "
    pre = "#" if unit == "rank" else ""
    value = f"{sign}{_num(claim.value)}"
    if claim.value_hi is not None:
        value = f"{value}–{_num(claim.value_hi)}"
    text = f"{pre}{value}{sep}{shown}".strip()
    if claim.baseline is not None:
        text = f"{f'{_num(claim.baseline)}{sep}{shown}'.strip()} → {text}"
    return text


def format_claim(claim) -> str:
    """'~6.17x lossless', '3–10x', 'ρ = 0.55', '76% → 99%', 'within ±15%': the number as a reader scans it."""
    prefixes, pm, adjective = qualifier_parts(claim.qualifier or "")
    text = _number(claim, "±" if pm else "")
    words = [_PREFIX_TEXT.get(p, p) for p in prefixes]
    lead = "".join(w if w in ("~", "≥", "≤", ">", "<") else f"{w} " for w in words)
    return f"{lead}{text}" + (f" {adjective}" if adjective else "")


# ----------------------------------------------------------------------------- ranking

_KIND_WEIGHT = {
    "speedup": 3.0, "throughput": 3.0, "latency": 3.0, "memory": 3.0, "compute": 3.0, "cost": 3.0, "energy": 3.0,
    "compression": 2.8, "accuracy": 2.6, "error": 2.6, "perplexity": 2.6, "improvement": 2.6, "reduction": 2.6,
    "utilization": 2.2, "efficiency": 2.2, "correlation": 2.4, "sparsity": 1.8, "ranking": 1.6, "similarity": 1.2,
    "time": 1.2,
}  # fmt: skip
_CHANGE_KINDS = ("speedup", "compression")  # "2.4x speedup", "compress 4x": a ratio that is itself a change
_NEVER = ("other", "setup")
_OTHER_KIND_WEIGHT = 2.6
MIN_SCORE = 3.5  # tuned on the dev split of tests/data/headlines_eval.jsonl (docs/headlines.md)

_RESULT_CUE = re.compile(
    r"\b(?:achiev\w*|outperform\w*|surpass\w*|beats?|we\s+(?:show|find|demonstrate|observe)|results?\s+show|"
    r"reduc\w*|cuts?|lowers?|improv\w*|increas\w*|boost\w*|rais\w*|speeds?\s+up|accelerat\w*|yields?|deliver\w*|"
    r"reach\w*|attain\w*|match\w*|recover\w*|retain\w*|sav\w*|enabl\w*|gains?|faster|fewer|smaller|higher|lower|"
    r"serves?|sustains?|skips?|halv\w*|shrinks?|dominat\w*|predicts?|agrees?|correlat\w*|"
    r"state[- ]of[- ]the[- ]art|SOTA|new\s+(?:state|record|best|bar)|leaderboard|establish\w*)\b",
    re.I,
)
_SETUP_CUE = re.compile(
    r"\b(?:we\s+(?:train|collect|use|build|construct|release|sample|curate|gather|annotate|crawl)\w*|trained\s+on|"
    r"dataset\s+of|corpus\s+of|consist\w*|contain\w*|compris\w*|drawn\s+from|we\s+set|is\s+set\s+to|"
    r"covering|spanning|budget\s+of|promis\w*|is\s+routinely\s+reported|prior\s+work|previous\s+work|"
    r"existing\s+(?:methods|work|systems)|typically|usually|commonly)\b",
    re.I,
)
# What sits right before the number and makes it a condition or someone else's figure, not the finding.
_CONDITION_BEFORE = re.compile(
    r"(?:(?<!up\s)\b(?:at|when|until)\s+(?:a\s+|an\s+)?(?:~|about\s+)?$|"
    r"\b(?:compared\s+(?:with|to)|versus|vs\.?|than|against|whereas)\b[^.;]{0,60}$)",
    re.I,
)
_LOSS_AFTER = re.compile(r"\s*(?:drop|loss|degradation|decline|penalty)\b", re.I)
_OVERHEAD_NEAR = re.compile(r"\b(?:overhead|adds?|added|extra|additional|costs?\s+only|at\s+a\s+cost\s+of)\b", re.I)
_LOSS_NEAR = re.compile(
    r"\b(?:loses?|losing|loss|drops?|falls?|fell|declin\w*|degrad\w*|penalty|sacrific\w*|at\s+the\s+expense)\b", re.I
)
_SHARE_AFTER = re.compile(
    r"\s*of\s+(?:the\s+|all\s+|its\s+|their\s+)?(?:\w+\s+){0,2}?(?:tokens?|data|dataset|samples|examples|requests|"
    r"parameters|weights|heads|neurons|experts|layers|cases|traffic|time|energy|users|queries|prompts|documents)\b",
    re.I,
)
_DROPPED_AFTER = re.compile(r"\s*(?:of\s+\w+\s+)?(?:tokens?\s+)?(?:dropped|discarded|masked|pruned\s+away)\b", re.I)


def _position(sentence: str, summary: str) -> float:
    """Where a sentence sits in the summary: 0 when it opens it, 1 when it closes it (0 when not found)."""
    at = summary.find(sentence) if sentence else -1
    return at / max(1, len(summary) - len(sentence)) if at > 0 else 0.0


@lru_cache(maxsize=4096)
def _cues(sentence: str) -> tuple[bool, int]:
    """(whether the sentence reads as a result, where its first setup cue starts or a large number): several
    claims share one sentence."""
    setup = _SETUP_CUE.search(sentence)
    return bool(_RESULT_CUE.search(sentence)), setup.start() if setup else 1 << 30


def score_claim(claim, position: float = 0.5, first_in_sentence: bool = True, title: bool = False) -> float | None:
    """How strongly a claim reads as the finding's main result; None when it never may headline.

    `position`: where its sentence sits in the summary, 0 (first) to 1 (last)."""
    kind = claim.kind
    if kind in _NEVER or not kind:
        return None  # `other` and `setup` never headline
    sent = claim.text or ""
    start, end = claim.start, claim.end
    before, after = sent[max(0, start - 80) : start], sent[end : end + 80]
    near = sent[max(0, start - 40) : min(len(sent), end + 40)]
    prefixes, _pm, _adj = qualifier_parts(claim.qualifier or "")
    score = _KIND_WEIGHT.get(kind, _OTHER_KIND_WEIGHT)  # a kind the extractor does not write: a generic change
    if claim.unit == "%" and claim.baseline is None and (_SHARE_AFTER.match(after) or _DROPPED_AFTER.match(after)):
        if kind not in ("accuracy", "compute", "memory", "energy", "cost", "utilization", "error"):
            return None  # a share of tokens / data / the model is setup
        if kind in ("utilization", "energy", "cost") and not claim.direction:
            score -= 1.5
    if claim.direction or claim.baseline is not None or (kind in _CHANGE_KINDS and claim.unit == "x"):
        score += 1.0
    if claim.baseline is not None:
        score += 0.5
    result_cue, setup_at = _cues(sent)
    if result_cue:
        score += 1.0
    if setup_at <= start:
        score -= 1.5
    if _CONDITION_BEFORE.search(before) and claim.baseline is None:
        score -= 2.0
    if "within" in prefixes or (prefixes and prefixes[-1] in ("under", "at most") and claim.unit == "%"):
        score -= 1.5  # a tolerance or a bound: "within 8% of uniform", "less than 1% to inference compute"
    if _OVERHEAD_NEAR.search(near):
        score -= 1.5
    loss_after = kind == "reduction" and _LOSS_AFTER.match(after)  # "with only a 0.6% drop compared to ..."
    if loss_after or (kind in ("accuracy", "perplexity") and claim.direction == "down" and _LOSS_NEAR.search(near)):
        score -= 2.5  # the price of a method, not its finding ("loses 3.4 points", "with a 0.7-point drop")
    if claim.unit in ("$", "€", "£"):
        score += 0.6  # a price stated is a result ("trained for $2,300"), unlike the days it took
    if kind == "time" and not claim.direction:
        score -= 1.0  # "trained for 11 days" is setup unless something got shorter
    if claim.unit in ("x", "%", "points") and _BY_BEFORE.search(before):
        score += 0.2  # an explicit change: "improves throughput by 9.3x"
    if first_in_sentence:
        score += 0.3
    if claim.subject:
        score += 0.2
    score += 0.6 * position
    if title:
        score += 1.0
    return score


def choose_headline(claims: Sequence[Any], text: str = "") -> Headline | None:
    """The claim that states the main result, as a Headline; None when no claim is good enough (`other` never
    headlines). `claims`: ledger rows or claims.Claim objects in reading order; `text`: the finding's summary."""
    summary = text or ""
    # a claim whose sentence left the summary (kept in the ledger for its hook) is no longer the finding's result
    claims = [
        c
        for c in claims
        if not getattr(c, "vanished", False)
        and (not summary or getattr(c, "field", "summary") == "title" or (c.text or "").strip() in summary)
    ]
    if not claims:
        return None
    # The summary's best claim first: a title's number is already on show in the title (each thing said once),
    # so it headlines only when no summary claim is good enough.
    best = None
    for field_claims in (
        [c for c in claims if getattr(c, "field", "summary") != "title"],
        [c for c in claims if getattr(c, "field", "summary") == "title"],
    ):
        best_score = MIN_SCORE
        seen: set[str] = set()
        for c in field_claims:
            title = getattr(c, "field", "summary") == "title"
            sent = (c.text or "").strip()
            position = 0.0 if title else _position(sent, summary)
            s = score_claim(c, position=position, first_in_sentence=sent not in seen, title=title)
            if s is not None:
                seen.add(sent)  # first among the claims that may headline ("Dropping 75% ..., 2.1x faster")
            if s is not None and s > best_score + 1e-9:
                best, best_score = c, s
        if best is not None:
            break
    if best is None:
        return None
    level = _level_before(best, claims)
    if level is not None:
        best = level  # "72.4% on MATH, +9.6 points": the level leads, its gain follows in the phrase
    return Headline(
        best.value,
        best.value_hi,
        best.unit,
        best.kind,
        best.direction,
        best.baseline,
        headline_text(best, claims),
        best,
    )


# ----------------------------------------------------------------------------- the phrase

_MASS = {"compute", "memory", "energy", "traffic", "power", "bandwidth", "storage", "communication", "overhead",
         "computation", "time", "work", "data", "space", "cache"}  # fmt: skip
_STOP_WORDS = {"than", "over", "vs", "vs.", "versus", "compared", "while", "with", "and", "at", "on", "for", "when",
               "which", "relative", "across", "under", "from", "to", "in", "by", "as", "without", "using",
               "whereas", "but", "or", "of", "after", "before", "through", "within", "is", "are", "was"}  # fmt: skip
_DIR_WORD = re.compile(
    r"(?P<up>faster|quicker|higher|more|greater|larger|better|improvements?|increases?|gains?|boosts?|speed-?ups?|"
    r"speedups?)|(?P<down>fewer|less|lower|smaller|cheaper|shorter|reductions?|decreases?|drops?|savings?|cuts?)",
    re.I,
)
_CHANGE_VERB = re.compile(
    r"\b(?P<verb>reduc\w*|cuts?|cutting|slash\w*|trims?|trimming|lowers?|lowering|decreas\w*|shrinks?|shrinking|"
    r"sav\w*|improv\w*|"
    r"increas\w*|boosts?|boosting|rais\w*|lifts?|speeds?\s+up|accelerat\w*|drops?|brings?\s+down)\s+",
    re.I,
)
_CHANGE_REST = re.compile(
    r"(?:the\s+|its\s+|their\s+|our\s+|a\s+|an\s+)?(?P<noun>[\w\-/ ]{2,50}?)\s+by\s+"
    r"(?:up\s+to\s+|about\s+|nearly\s+|almost\s+|over\s+|more\s+than\s+|at\s+least\s+|roughly\s+|~|≈)*$",
    re.I,
)
_NOUN_STOP = {"over", "under", "at", "on", "for", "with", "than", "across", "relative", "compared", "vs", "vs.",
              "versus", "during", "when", "while", "from", "in", "through", "without", "using"}  # fmt: skip
_DOWN_VERB = re.compile(r"reduc|cut|slash|trim|lower|decreas|shrink|sav|drop|down", re.I)
_BASELINE_PHRASE = re.compile(
    r"^[^.;()]{0,50}?\b(?:over|(?<!more )(?<!less )(?<!fewer )(?<!greater )than|vs\.?|versus|compared\s+(?:to|with)|"
    r"relative\s+to|against)\s+"
    r"(?:the\s+|a\s+|an\s+)?(?P<what>[^,;.()]{2,60})",
    re.I,
)
_BASELINE_STOP = re.compile(
    r"\s(?:at|on|with|while|and|across|in|for|under|when|which|by|as|without|using|through|to|from)\s", re.I
)
_KIND_NOUN = {
    "speedup": "speed-up", "throughput": "throughput", "latency": "latency", "memory": "memory", "compute": "compute",
    "cost": "cost", "energy": "energy", "compression": "compression", "accuracy": "accuracy", "error": "error",
    "perplexity": "perplexity", "utilization": "utilization", "efficiency": "efficiency", "correlation": "correlation",
    "sparsity": "sparsity", "similarity": "similarity", "time": "time", "ranking": "rank", "improvement": "improvement",
    "reduction": "reduction",
}  # fmt: skip


_METRIC_NAME = re.compile(
    r"\b(?:(?:attack|task|edit)\s+success(?:\s+rates?)?|success\s+rates?|win[- ]rates?|exact[- ]match|"
    r"pass@\d+|nDCG(?:@\d+)?|recall(?:@\d+)?|top-\d\s+accuracy|F1|BLEU|ROUGE[-\w]*|AUROC|AUC|mAP|FID|"
    r"(?:word\s+)?error\s+rates?|WER|hallucination\s+rates?|false[- ]positive\s+rates?)(?![\w@-])",
    re.I,
)


_BY_BEFORE = re.compile(
    r"\bby\s+(?:up\s+to\s+|about\s+|nearly\s+|over\s+|more\s+than\s+|roughly\s+|[~≈]\s*)*\$?$", re.I
)
_CHANGE_IN = re.compile(
    r"\s*(reductions?|decreases?|drops?|cuts?|savings?|improvements?|increases?|gains?|boosts?)\s+in\s+(?:the\s+)?",
    re.I,
)
_DOWN_NOUNS = ("reduction", "decrease", "drop", "cut", "saving")
_DIR_NOUN = re.compile(
    r"improvements?|gains?|increases?|boosts?|reductions?|decreases?|drops?|savings?|speed-?ups?", re.I
)
_CHANGE_OF = re.compile(
    r"\b(?:an?\s+|the\s+)?(?P<noun>(?:[A-Za-z][\w-]*\s+){1,3}?)(?P<dir>improvement|gain|increase|boost|reduction|"
    r"decrease|drop)s?\s+of\s+(?:up\s+to\s+|about\s+|around\s+|nearly\s+|over\s+|more\s+than\s+|[~≈+]\s*)*$",
    re.I,
)


_TEX_WRAP = re.compile(r"\$?\\(?:texttt|textbf|textit|textrm|mathrm|mathbf|text)\{([^{}]*)\}\$?")


def _words(text: str, limit: int) -> list[str]:
    text = _TEX_WRAP.sub(r"\1", text)  # "MRR$\texttt{@}$5" reads "MRR@5"
    out = []
    for tok in text.split():
        word = tok.strip("\"'“”")
        bare = word.rstrip(",;:.)")
        if bare.lower() in _STOP_WORDS or not bare or bare[0] in "(0123456789\\$" or not re.search(r"[A-Za-z]", bare):
            break
        out.append(bare)
        if bare != word or len(out) >= limit:
            break
    return out


_RATE_NOUNS = {"costs", "times", "latencies", "rates", "speeds", "loads", "volumes", "sizes", "lengths"}


def _adjective(noun: str, down: bool) -> str:
    last = noun.split()[-1].lower() if noun.split() else ""
    if down:
        if last in _MASS:
            return "less"
        plural = last.endswith("s") and not last.endswith(("ss", "us")) and last not in _RATE_NOUNS
        return "fewer" if plural else "lower"
    if last in ("speed", "generation", "decoding", "inference", "prefill", "decode", "training", "convergence"):
        return "faster"
    return "more" if last.endswith("s") and not last.endswith(("ss", "us")) and last != "flops" else "higher"


def _what(claim) -> str:
    """Direction and what the number measures, taken from the sentence when it says so ("fewer expert FLOPs",
    "faster prefill", "lower median time-to-first-token"), else from the claim's kind."""
    sent = claim.text or ""
    after = sent[claim.end : claim.end + 120]
    words = _words(after, 5)
    if claim.baseline is not None:
        noun = _fromto_noun(sent[: claim.start])
        if noun:
            return noun  # "raises average attack success from 6% to 64%": 6% → 64% average attack success
    of = re.match(r"\s*of\s+", after)
    if of and claim.unit in ("%", "x") and claim.baseline is None:
        rest = _words(after[of.end() :], 5)
        if rest and claim.direction == "down" and not re.search(r"\bto\s*$", sent[: claim.start]):
            noun = " ".join(rest[1:] if rest[0].lower() in ("the", "its", "their", "all") else rest)
            return f"{_adjective(noun, True)} {noun}"  # "skips 34% of layer computations": 34% fewer ...
        if rest:
            return "of " + " ".join(rest)  # "88% of the goodput", "97% of the original average score"
    change_in = _CHANGE_IN.match(after)
    if change_in:  # "a 3x reduction in latency": 3× lower latency; "a 22% increase in throughput": 22% higher ...
        noun_words = _words(after[change_in.end() :], 4)
        if noun_words:
            noun = " ".join(noun_words)
            return f"{_adjective(noun, change_in.group(1).lower().startswith(_DOWN_NOUNS))} {noun}"
    change_of = _CHANGE_OF.search(sent[max(0, claim.start - 80) : claim.start])
    if change_of:  # "an average accuracy improvement of up to 6.67%": up to 6.67% higher average accuracy
        noun = " ".join(change_of.group("noun").split()[-3:])
        return f"{_adjective(noun, change_of.group('dir').lower().startswith(_DOWN_NOUNS))} {noun}"
    named_change = next((i for i, w in enumerate(words[:3]) if _DIR_NOUN.fullmatch(w)), None)
    if named_change:  # "a 4.6% accuracy improvement": the sentence's own words
        return " ".join(words[: named_change + 1])
    if words and _DIR_WORD.fullmatch(words[0]):
        if len(words) == 1 and words[0].lower() in ("faster", "smaller", "lower", "higher", "cheaper", "less"):
            noun = _KIND_NOUN.get(claim.kind, "") if claim.kind not in ("improvement", "reduction") else ""
            if words[0].lower() == "faster":
                return "faster"
            return f"{words[0]} {noun}".strip()
        return " ".join(words)
    if (
        words
        and claim.unit == "x"
        and (words[-1].lower() in ("speedup", "speed-up", "speedups") or claim.kind in _KIND_NOUN)
    ):
        phrase = " ".join(words)
        if claim.direction == "down" and claim.kind in ("latency", "memory", "compute", "cost", "energy"):
            return f"{_adjective(phrase, True)} {phrase}" if not _DIR_WORD.search(phrase) else phrase
        return phrase
    m = _change_before(sent[max(0, claim.start - 120) : claim.start])
    if m:
        verb, noun = m
        if verb.startswith(("speed", "accelerat")):
            return f"faster {noun}"
        down = bool(_DOWN_VERB.match(verb))
        if claim.unit == "points":
            return noun
        return f"{_adjective(noun, down)} {noun}"
    noun = _KIND_NOUN.get(claim.kind, "")
    if claim.kind in ("accuracy", "error") and not claim.direction:
        named = _METRIC_NAME.findall(sent[max(0, claim.start - 60) : claim.end + 40])
        if named:
            noun = named[-1] if named[-1].isupper() or "@" in named[-1] else named[-1].lower()  # "edit success"
    if claim.kind == "speedup":
        return "speed-up" if claim.unit == "x" else "faster"
    if claim.kind in ("improvement", "reduction"):
        return noun
    gain = claim.unit == "x" or _BY_BEFORE.search(sent[max(0, claim.start - 40) : claim.start])
    if claim.direction and claim.unit in ("x", "%") and claim.baseline is None and gain:
        return f"{_adjective(noun, claim.direction == 'down')} {noun}"
    return noun  # a level ("achieving 95.12% classification accuracy", "improved to 90%") has no "higher"


_FROM_TAIL = re.compile(r"(?P<head>[^,;:()]*?)\s+from\s+[~≈]?\s*$", re.I)
_FROMTO_VERB = re.compile(
    r"\b(?:rais\w*|reduc\w*|improv\w*|increas\w*|decreas\w*|lower\w*|lift\w*|boost\w*|cuts?|drops?|dropped|"
    r"falls?|fell|rises?|rose|goes|went|grows?|grew|shrinks?|climbs?|jumps?|moves?|changes?|brings?|takes?|pushes)\b",
    re.I,
)


def _fromto_noun(before: str) -> str:
    """What moved in "X raises <noun> from A to B" / "<noun> falls from A to B", or ''."""
    m = _FROM_TAIL.search(before)
    if not m:
        return ""
    head = m.group("head")
    verbs = list(_FROMTO_VERB.finditer(head))
    if not verbs:
        return ""
    v = verbs[-1]
    after_verb = head[v.end() :].split()
    words = after_verb if after_verb else head[: v.start()].split()[-4:]  # "the rate of X falls from"
    words = [w for w in words if w.lower() not in ("the", "its", "their", "a", "an")]
    if not words or len(words) > 6:
        return ""
    words = words[-5:]
    if words[0][:1].isupper() and words[0][1:].islower() and head.lstrip().startswith(words[0]):
        words[0] = words[0].lower()  # the sentence's first word: "Median latency falls from ..."
    return " ".join(words).strip(",.")


def _change_before(window: str) -> tuple[str, str] | None:
    """("reduces", "median time-to-first-token") from "... reduces median time-to-first-token by ": the change verb
    nearest the number and what it changed, cut before a condition ("throughput over the best fixed tree")."""
    for v in reversed(list(_CHANGE_VERB.finditer(window))):
        rest = _CHANGE_REST.match(window, v.end())
        if not rest:
            continue
        words = []
        for w in rest.group("noun").split():
            if w.lower() in _NOUN_STOP:
                break
            words.append(w)
        if words[:2] and words[0].lower() in ("number", "amount") and words[1].lower() == "of":
            words = words[2:]  # "the number of thinking tokens": fewer thinking tokens
        if words:
            return v.group("verb").lower(), " ".join(words[:4])
    return None


def _baseline_phrase(claim) -> str:
    after = (claim.text or "")[claim.end : claim.end + 160]
    m = _BASELINE_PHRASE.match(after)
    if not m:
        return ""
    what = m.group("what")
    stop = _BASELINE_STOP.search(" " + what + " ")
    what = (" " + what)[: stop.start()] if stop else what
    what = " ".join(what.split()[:6]).strip(" ,")
    if not what or not re.search(r"[A-Za-z]", what) or re.search(r"(?:^|\s)[~≈]?\d[\d.,]*%?(?:\s|$)|[~≈]", what):
        return ""
    return what


def _level_before(delta, claims: Sequence[Any]):
    """The accuracy level a gain follows in its sentence ("72.4% on MATH, +9.6 points"), or None."""
    if delta.unit not in ("points", "%") or delta.kind not in ("accuracy", "improvement") or delta.direction != "up":
        return None
    for c in claims:
        same = c is not delta and c.text == delta.text and c.end <= delta.start and delta.start - c.end <= 60
        if same and c.kind == "accuracy" and not c.direction and c.unit in ("%", "") and _delta_after(c, claims):
            return c
    return None


def _delta_after(claim, claims: Sequence[Any]) -> str:
    """'+9.6 pts' when an accuracy level is followed in its sentence by its gain."""
    if claim.kind != "accuracy" or claim.direction or claim.unit not in ("%", ""):
        return ""
    for c in claims:
        if c is claim or c.text != claim.text or c.start <= claim.end or c.start - claim.end > 60:
            continue
        if c.unit in ("points", "%") and c.kind in ("accuracy", "improvement") and c.direction == "up":
            return _number(c, "+")
    return ""


_HARDWARE_KINDS = ("speedup", "throughput", "latency", "memory", "compute", "energy", "utilization", "time")


def headline_text(claim, claims: Sequence[Any] = ()) -> str:
    """The phrase for one claim: value, direction and what it measures, then baseline, model and hardware when
    the sentence names them: "2.6× lower latency (vs batch-1 estimate)", "72.4% on MATH, +9.6 pts"."""
    prefixes, pm, adjective = qualifier_parts(claim.qualifier or "")
    number = _number(claim, "±" if pm else "", times="×")
    if claim.unit == "points" and claim.direction == "up" and not number.startswith(("+", "−", "-")):
        number = "+" + number
    if claim.unit == "points" and claim.direction == "down" and not number.startswith(("+", "−", "-")):
        number = "−" + number
    lead = "".join(w if w in ("~", "≥", "≤", ">", "<") else f"{w} " for w in (_PREFIX_TEXT.get(p, p) for p in prefixes))
    what = _what(claim)
    if claim.unit in ("rho", "r2", "r", "tau", "kappa", "ppl") or (claim.unit == "elo" and claim.kind == "accuracy"):
        what = ""  # the unit says what it measures
    if claim.value < 0 and _DIR_WORD.match(what or "") and claim.baseline is None:
        number = number.replace("-", "", 1).replace("−", "", 1)  # "−26.8% lower perplexity" says it twice
    words = [f"{lead}{number}"]
    if adjective and adjective not in what:
        words.append(adjective)
    if what and what.lower() not in number.lower():
        words.append(what)
    phrase = " ".join(words)
    bench = re.search(
        r"\b(?:MMLU(?:-Pro)?|GSM8K|MATH(?:-500)?|HumanEval\+?|MBPP\+?|GPQA(?:\s+Diamond)?|AIME(?:\s?\d{2,4})?|"
        r"SWE-bench(?:\s+Verified)?|LiveCodeBench|ImageNet|WikiText(?:-2|-103)?|MT-Bench|AlpacaEval(?:\s?2(?:\.0)?)?|"
        r"Arena-Hard|BBH|IFEval|LongBench|RULER|HellaSwag|ARC(?:-Challenge)?)\b",
        claim.context or "",
    )
    if claim.kind in ("accuracy", "error", "perplexity") and bench and bench.group() not in phrase:
        if what == "accuracy" and not claim.direction:
            phrase = phrase.replace(" accuracy", "", 1)  # "72.4% on MATH"
        phrase += f" on {bench.group()}"
    delta = _delta_after(claim, claims)
    if delta:
        phrase += f", {delta}"
    model = claim.subject or ""
    if not re.search(r"\d", model):
        from digest.modelnames import MODEL_RE  # a model named before the number: "On Qwen3-8B, DFlash ..."

        named = [m.group() for m in MODEL_RE.finditer(claim.text or "", 0, claim.start)]
        model = named[-1].rstrip(".,") if named else ""
    if model and re.search(r"\d", model) and model not in phrase:
        phrase += f" on {model}"
    hardware = re.search(r"\b(?:[AHB]\d{3}|GB\d{3}|H800|A800|V100|L40S?|MI\d{3}X?|RTX\s?\d{4}|TPU\s?v\d\w*)\b",
                         claim.context or "")  # fmt: skip
    if hardware and hardware.group() not in phrase and len(phrase) < 60 and claim.kind in _HARDWARE_KINDS:
        phrase += f" on {hardware.group()}" if " on " not in phrase else f", {hardware.group()}"
    base = _baseline_phrase(claim) if claim.baseline is None else ""
    if base and len(phrase) + len(base) < 100:
        phrase += f" (vs {base})"
    return phrase


# ----------------------------------------------------------------------------- evaluation


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def evaluate(path, split: str | None = None) -> dict:
    """Share of abstracts whose headline is the labelled main result (or correctly none), on a JSONL file of
    {"id", "text", "headline": {"value", "unit"} | null, "accept": [{"value", "unit"}...], "split"}.

    `accept` lists numbers that state the main result equally well (the same finding on a second benchmark);
    choosing one of them counts as right. `split`: only rows of that split ("dev", "test")."""
    import json
    from pathlib import Path

    from digest.claims import extract_claims

    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if split is None or r.get("split") == split]
    right = with_gold = right_gold = none_gold = right_none = 0
    errors: list[dict] = []
    for r in rows:
        h = choose_headline(extract_claims(r["text"]), r["text"])
        gold = r.get("headline")
        ok_set = [g for g in [gold, *r.get("accept", [])] if g]
        if gold is None:
            ok = h is None
            none_gold += 1
            right_none += ok
        else:
            ok = h is not None and any(_same(h.value, g["value"]) and h.unit == g["unit"] for g in ok_set)
            with_gold += 1
            right_gold += ok
        right += ok
        if not ok:
            got = {"value": h.value, "unit": h.unit, "kind": h.kind, "text": h.text} if h else None
            errors.append({"id": r.get("id", ""), "gold": gold, "accept": r.get("accept", []), "got": got})
    n = len(rows)
    return {
        "n": n,
        "accuracy": right / n if n else 0.0,
        "with_result": with_gold,
        "right_with_result": right_gold,
        "without_result": none_gold,
        "right_without_result": right_none,
        "errors": errors,
    }
