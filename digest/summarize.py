"""Pure, extractive: the one-line summary and key points of a finding come from its own sentences.

The one-liner is the sentence that states the main result ("Experiments show that DFlash achieves over 6x
lossless acceleration ..."), lightly trimmed; an abstract without a result sentence falls back to the sentence
that says what the paper does ("We propose ..."), a blog teaser with neither to its sentence with a number or an
outcome word, then to its first full sentence. Each sentence gets a role from
cue words, its position relative to the first "what we do" sentence and the headline numbers
(`digest.claims.extract_claims`) it carries; the scores and cues are visible through `sentence_roles`, so every
choice can be explained. Method and figures: docs/summaries.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache


def _words(*groups: str) -> frozenset[str]:
    return frozenset(w for g in groups for w in g.split())


# --- cue words ----------------------------------------------------------------------------------------------

# "Experiments on X show that", "Our results demonstrate", "we find that", "Empirically, we observe".
_REPORT_NOUN = re.compile(  # "Experiments on X show", "Our results demonstrate"
    r"\b(?:experiment(?:s|al results?)?|results?|evaluations?|empirical(?:ly)?|analys[ie]s|findings?|studies|"
    r"ablations?|tests?|benchmarking|comparisons?|simulations?)\b[^;]{0,160}?\b(?:show|demonstrate|reveal|indicate|"
    r"confirm|suggest|verify|validate|highlight|establish|prove|find|uncover|report)(?:s|e?d)?\b|showed\b|found\b"
)
_REPORT_WE = re.compile(  # "we find", "we show that", "and observe that", "Empirically, ..."
    r"\bwe (?:also |further |empirically |then |first |consistently |additionally )?(?:find|found|observe|discover|"
    r"identify|reveal|note|detect|prove)(?:d|ed)?\b"
    r"|\bwe (?:also |further |empirically |then |first |theoretically |formally )?(?:show|demonstrate|prove|confirm)"
    r"(?:ed)?\b[^.;]{0,40}?\b(?:that|how)\b"
    r"|\b(?:and|while|thereby) (?:find|found)\b|\b(?:and|,) (?:observe|show|reveal|demonstrate)s? that\b"
    r"|\b(?:observing|showing|finding|revealing|demonstrating) that\b|^empirically\b"
)
# "we identify the open challenges / future directions": a survey's outline, not a finding.
_OUTLOOK_FIND = re.compile(
    r"we (?:also |further )?identify (?:the |several |key |open |remaining |main |major |critical )*(?:challenges|"
    r"open (?:problems|questions|issues)|research (?:directions|gaps|opportunities)|future|directions|gaps|"
    r"opportunities)\b"
)
# What was achieved: finite outcome verbs ("achieves", "outperforms"), then weaker comparatives.
_OUTCOME = re.compile(
    r"(?<!to )(?<!to further )\b(?:achieve|improve|reduce|surpass|exceed)\b|"
    r"\b(?:achiev(?:es|ed)|outperform(?:s|ed)?|surpass(?:es|ed)|exceed(?:s|ed)|beats?|improv(?:es|ed)|"
    r"reduc(?:es|ed)|boost(?:s|ed)|cuts|lowers|increas(?:es|ed)|rais(?:es|ed)|lifts|yield(?:s|ed)|deliver(?:s|ed)|"
    r"attain(?:s|ed)|obtain(?:s|ed)|match(?:es|ed)|rival(?:s|ed)|narrows|accelerates|sets? (?:a )?new|"
    r"fail(?:s|ed)? to|struggle(?:s|d)?|collapse(?:s|d)|degrade(?:s|d)|lag(?:s|ged)?|(?:is|are|was|were) "
    r"(?:able|unable|capable)|can (?:(?:effectively |successfully |accurately |reliably )(?:be|match|replace|reach)|"
    r"match|replace|reach|achieve|outperform|surpass)|"
    r"scor(?:es|ed)|reach(?:es|ed)|tend to|mitigates|alleviates|remains? (?:robust|stable|competitive)|"
    r"amplif(?:ies|ied)|enhances|strengthens|decreas(?:es|ed)|doubles|halves|triples|eliminates|restores|emerges|"
    r"(?:demonstrat|show|exhibit|display)(?:e|es|s|ed)? (?:strong|competitive|superior|comparable|state-of-the-art|"
    r"remarkable|impressive|significant|consistent|robust|notable|clear|high|excellent)\b|"
    r"align(?:s|ed)? (?:well |closely )?with human|(?:is|are|was|were) (?:\w+ly )?(?:harder|easier|better|worse|"
    r"faster|slower|higher|lower|stronger|weaker|more \w+|less \w+) than)\b",
)
_COMPARATIVE = re.compile(
    r"\b(?:faster|slower|fewer|higher|lower|better|worse|stronger|weaker|more (?:accurate|robust|efficient)|"
    r"less|drops?|gains?|significant(?:ly)?|substantial(?:ly)?|consistent(?:ly)?|accuracy|success rate|"
    r"speed-?ups?|improvements?|reductions?|achieving|outperforming|surpassing|only|even|near(?:ly)?|up to)\b",
)
# A closing sentence that draws the moral ("These results highlight the importance of ...") is not the finding.
_IMPLICATION = re.compile(
    r"^(?:(?:overall|together|collectively|taken together|ultimately|in sum(?:mary)?|in short),?\s+)?"
    r"(?:these|our|the|such) (?:results|findings|insights|observations|analyses|experiments)\s+(?:\w+ly\s+)?"
    r"(?:highlight|suggest|underscore|point|call|motivate|offer|provide|open|pave|emphasi[sz]e|imply|may|could|"
    r"should|lead|inform|shed|lay|serve|contribute|have implications)",
)
# A sentence that opens on its evidence: "In our tests, ...", "Across five reasoning tasks, ...", "On 3 benchmarks, ..."
_EVIDENCE = re.compile(
    r"^(?:in our (?:tests|experiments|evaluations?|study|studies|analys[ie]s)|across (?:[\w-]+ ){0,6}(?:models|tasks|"
    r"benchmarks|datasets|settings|languages|domains|subfields|backbones|variants|scales|sizes)|on (?:[\w-]+ ){0,6}"
    r"(?:benchmarks?|datasets?))\b"
)
_SOTA = re.compile(r"state[- ]of[- ]the[- ]art|\bsota\b|\bnew (?:best|record)\b|\bbaselines?\b")
_NUMBER = re.compile(r"\d(?:[\d.,]*\d)?\s*(?:%|\\%|x\b|×|-fold|\s?times\b|\s?points?\b|\s?pp\b)")
# What the paper does: "We propose ...", "This paper introduces ...", "In this work, we study ...".
_DOES = re.compile(
    r"\b(?:we|this (?:paper|work|study|report|survey|review|article|research)|in this (?:paper|work|study),?"
    r"|here,? we|the authors|our (?:paper|work|study))\b[^.;]{0,60}?\b(?:propose|introduce|present|develop|design|"
    r"build|construct|formulate|release|stud(?:y|ies)|investigate|examine|explore|conduct|evaluate|analy[sz]e|offer|"
    r"describe|make|reframe|tackle|address|consider|focus|aim|provide|contribute|create|curate|compile|collect|"
    r"benchmark|assess|probe|endow|equip|unify|argue|define|extend|apply|leverage|revisit|establish|identify)\w*",
)
# Background and prior work.
_BACKGROUND = re.compile(
    r"\b(?:recent(?:ly)?|prior|previous(?:ly)?|existing|traditional|conventional|current(?:ly)?|however|despite|"
    r"although|remains?|has (?:been|emerged|shown|become)|have (?:been|emerged|shown|become|achieved|"
    r"demonstrated)|widely|increasingly|et al\.?|is (?:crucial|essential|critical|important|a key|a central)|"
    r"challeng\w*|underexplored|suffer\w*)\b",
)
# Boilerplate that says a result exists without saying what it is.
_VAGUE = re.compile(
    r"\b(?:demonstrat|validat|verif|show|confirm|prov|illustrat|highlight)\w* (?:the |its |our )?(?:effectiveness|"
    r"efficacy|superiority|robustness|feasibility|potential|benefits?|value|usefulness|utility|advantages?|merits?)\b"
    r"|\bperforms? (?:exceptionally |remarkably )?well\b|\bpromising (?:results|performance)\b",
)
# Never the finding: code and data links, hopes, future work, outlines.
_NOT_FINDING = re.compile(
    r"https?://|\bgithub\b|\b(?:code|data|dataset|models?|weights|implementation|benchmark|project page|demo|"
    r"materials?|scripts?)s?\b[^.]{0,80}\b(?:(?:is|are|will be|be|been) (?:made )?(?:publicly |freely |openly )?"
    r"(?:available|released|open-sourced|shared|accessible))|\bwe (?:hope|believe|expect|anticipate|discuss|release|"
    r"outline|close|conclude|open-source)\b|\bwe make\b[^.]{0,60}\b(?:available|public)|\bfuture (?:work|research|"
    r"directions?)\b|\bthis (?:paper|work) makes\b|\bto support (?:open|future|reproduc)",
)
# Words one of which must occur for the slower patterns to be tried at all (a substring test costs ~50 ns).
_NOT_FINDING_GUARD = _words(
    "http https github available availability released release releases open shared accessible future makes",
    "support hope believe expect anticipate discuss outline close conclude make",
)
_SOTA_GUARD = frozenset(("state", "sota", "baseline", "baselines", "best", "record"))


# Words without which a pattern cannot match: the pattern runs only when the sentence has one of them (a set
# intersection is ~20x cheaper than a scan with a long alternation). Each set lists every word the pattern's
# alternatives need, so a guard never changes a result, only skips work.
_REPORT_NOUNS = _words(
    "experiment experiments experimental result results evaluation evaluations empirical empirically analysis",
    "analyses finding findings studies ablation ablations test tests benchmarking comparison comparisons",
    "simulation simulations",
)
_REPORT_VERBS = _words(
    "show shows demonstrate demonstrates reveal reveals indicate indicates confirm confirms suggest suggests verify",
    "validate validates highlight highlights establish prove proves find finds uncover uncovers report reports",
    "showed demonstrated revealed indicated confirmed suggested verified validated highlighted established proved",
    "found uncovered reported",
)
_REPORT_WE_GUARD = _words(
    "we find found observe observes show shows reveal reveals demonstrate demonstrates observing showing finding",
    "revealing demonstrating empirically",
)
_OUTCOME_GUARD = _words(
    "achieves achieved outperform outperforms outperformed surpasses surpassed exceeds exceeded beat beats",
    "improves improved reduces reduced boosts boosted cuts lowers increases increased raises raised lifts yields",
    "yielded delivers delivered attains attained obtains obtained matches matched rivals rivaled narrows",
    "accelerates new fail fails failed struggle struggles struggled collapses collapsed degrades degraded lag lags",
    "lagged able unable capable can scores scored reaches reached tend mitigates alleviates robust stable",
    "competitive strong superior comparable state remarkable impressive significant consistent notable clear human",
    "high excellent achieve outperform surpass amplifies amplified enhances strengthens decreases decreased doubles",
    "halves triples eliminates restores emerges improve reduce exceed than",
)
_COMPARATIVE_GUARD = _words(
    "faster slower fewer higher lower better worse stronger weaker more less drop drops gain gains significant",
    "significantly substantial substantially consistent consistently accuracy success speed speedup speedups",
    "improvement improvements reduction reductions achieving outperforming surpassing only even near nearly up",
)
_BACKGROUND_GUARD = _words(
    "recent recently prior previous previously existing traditional conventional current currently however",
    "despite although remain remains has have widely increasingly al is underexplored",
)
_VAGUE_GUARD = _words(
    "effectiveness efficacy superiority robustness feasibility potential benefit benefits value usefulness",
    "utility advantage advantages merit merits well promising",
)
_DOES_SUBJECT = _words("we this authors our")
_DOES_STEMS = tuple(  # each matches its word with any ending ("stud" -> study, studies; "analy" -> analyze)
    _words(
        "propose introduce present develop design build construct formulate release stud investigate examine explore",
        "conduct evaluate analy offer describe make reframe tackle address consider focus aim provide contribute",
        "create curate compile collect benchmark assess probe endow equip unify argue define extend apply leverage",
        "revisit establish identify",
    )
)
_TOKEN = re.compile(r"[a-z]+")
_WEAK_NUMBER_KINDS = {"other"}
RESULT_THRESHOLD = 2.5  # a sentence scoring this much states a result (tuned on the dev split only)

# Lead-ins trimmed from the one-liner: "Experiments show that X achieves" -> "X achieves".
_LEAD_IN = re.compile(
    r"^(?:(?:notably|moreover|furthermore|additionally|in addition|overall|specifically|finally|empirically|crucially|"
    r"importantly|in particular|in short|in sum|as a result|collectively|together|taken together|in contrast|"
    r"conversely|remarkably|as a highlight|for example|for instance),\s+)?"
    r"(?:(?:(?:extensive|comprehensive|empirical|experimental|our|the|these|preliminary)\s+)*"
    r"(?:experiments?|experimental results|results|evaluations?|findings|analys[ie]s)\s+"
    r"(?:show|demonstrate|reveal|indicate|confirm|suggest|verify|validate)s?\s+that\s+"
    r"|we (?:also |further |empirically )?(?:find|show|observe|demonstrate|discover|confirm)\s+that\s+)?",
    re.IGNORECASE,
)
_OUR_THING = re.compile(
    r"^(?:our|the proposed|this) (?:method|approach|framework|model|technique|system|algorithm|pipeline|recipe)\b",
    re.IGNORECASE,
)
# A sentence with no subject ("Reportedly achieves ~6.17x ...", as blog notes write): the title's name goes first.
_NO_SUBJECT = re.compile(
    r"^(?:reportedly |also |further )?(?:achieves|reaches|delivers|gets|cuts|reduces|improves|outperforms|beats|"
    r"yields|matches|speeds|runs)\b",
    re.IGNORECASE,
)
_TRAILING_GLOSS = re.compile(
    r",\s+(?:demonstrating|highlighting|underscoring|showcasing|indicating|suggesting|validating|confirming|"
    r"establishing|marking|paving|offering|providing)\b[^,;]*$",
    re.IGNORECASE,
)
_LINK_WORD = re.compile(r"([.!?])\s+[a-z]\w{0,15}$")  # "... throughput. paper": a link's text glued to the end
_NAME = re.compile(r"^[A-Z0-9][\w.+\-]*(?:[ -][A-Z0-9][\w.+\-]*){0,2}$")


def sentences(text: str) -> list[str]:
    from digest.sentences import split_sentences

    return [s.strip() for s in split_sentences(text) if s.strip()]


@dataclass(frozen=True)
class SentenceRole:
    """One sentence's role: `result` (states what was achieved or found), `does` (what the paper does),
    `background`, or `other` (method detail, links); `score` ranks results; `cues` says why."""

    index: int
    role: str
    score: float
    cues: tuple[str, ...]


def _claim_kinds(parts: Sequence[str], claims: Iterable | None) -> list[list[str]]:
    """The kinds of the headline numbers in each sentence (claims are matched to sentences by their text)."""
    if claims is None:
        from digest.claims import extract_claims

        claims = [c for p in parts if any(ch.isdigit() for ch in p) for c in extract_claims(p)]
    by_text: dict[str, list[str]] = {}
    for c in claims:
        by_text.setdefault(c.text.strip(), []).append(c.kind)
    return [by_text.get(p, []) for p in parts]


def _hidden(p: str, w: frozenset[str]) -> bool:
    """A link, availability or outlook sentence, unless a result comes before the link ("... outperforms X.Code is
    available at ..." when the abstract lacks the space after the period)."""
    m = _NOT_FINDING.search(p) if w & _NOT_FINDING_GUARD else None
    if not m:
        return False
    head = p[: m.start()]
    return not (head and _report(head, w) and (_OUTCOME.search(head) or _COMPARATIVE.search(head)))


def _report(p: str, w: frozenset[str]) -> re.Match | None:
    """The leftmost reporting cue ("experiments show", "we find") of a lower-case sentence."""
    a = _REPORT_NOUN.search(p) if w & _REPORT_NOUNS and w & _REPORT_VERBS else None
    b = _REPORT_WE.search(p) if "we" in w or w & _REPORT_WE_GUARD else None
    if b and _OUTLOOK_FIND.match(p, b.start()):  # "we identify the challenges ... and propose directions": a plan
        b = None
    if a and b:
        return a if a.start() <= b.start() else b
    return a or b


def sentence_roles(parts: Sequence[str], claims: Iterable | None = None) -> list[SentenceRole]:
    """The role of every sentence of an abstract. `claims`: `extract_claims` output for the same text (computed
    when not given). Memoised on the sentences and their claims' kinds: a build that prepares a finding for its
    card, its page and its feed entry scores it once per process."""
    kinds = _claim_kinds(parts, claims)
    return list(_scored(tuple(parts), tuple(tuple(k) for k in kinds)))


@lru_cache(maxsize=4096)
def _scored(parts: tuple[str, ...], kinds: tuple[tuple[str, ...], ...]) -> tuple[SentenceRole, ...]:
    low = [p.lower() for p in parts]  # the role regexes are lower-case (faster than re.IGNORECASE)
    words = [frozenset(_TOKEN.findall(p)) for p in low]
    hidden = [_hidden(p, w) for p, w in zip(low, words, strict=True)]
    does = [
        bool(w & _DOES_SUBJECT) and any(x.startswith(_DOES_STEMS) for x in w) and bool(_DOES.search(p))
        for p, w in zip(low, words, strict=True)
    ]
    first_does = next((i for i in range(len(low)) if does[i] and not hidden[i]), None)
    out = []
    n = max(len(parts), 1)
    for i, p in enumerate(low):
        if hidden[i]:
            out.append(SentenceRole(i, "other", -5.0, ("link-or-outlook",)))
            continue
        w = words[i]
        cues: list[str] = []
        score = 0.0
        report = _report(p, w)
        if report:
            score += 3
            cues.append(f"report:{report.group().split()[0]}")
        if not report and p[:2] in ("in", "ac", "on") and _EVIDENCE.match(p):
            score += 2.5
            cues.append("evidence-first")
        outcome = _OUTCOME.search(p) if w & _OUTCOME_GUARD else None
        if outcome:
            score += 2.5
            cues.append(f"outcome:{outcome.group()}")
        comparative = _COMPARATIVE.findall(p) if w & _COMPARATIVE_GUARD else []
        if comparative:
            score += min(len(comparative), 3) * 0.5
            cues.append("comparative:" + ",".join(comparative[:3]))
        strong = [k for k in kinds[i] if k not in _WEAK_NUMBER_KINDS]
        if strong:
            score += 2 + min(len(strong), 2) * 0.5
            cues.append("numbers:" + ",".join(strong[:3]))
        elif kinds[i] or _NUMBER.search(p):
            score += 1
            cues.append("number")
        if w & _SOTA_GUARD and _SOTA.search(p):
            score += 1
            cues.append("sota-or-baseline")
        before_does = first_does is not None and i < first_does
        background = i == 0 and bool(  # only the opening sentence's background matters
            (w & _BACKGROUND_GUARD or "challeng" in p or "suffer" in p) and _BACKGROUND.search(p)
        )
        if before_does:
            score -= 3
            cues.append("before-what-we-do")
        elif first_does is None and i == 0 and background:
            score -= 2
            cues.append("opening-background")
        if does[i] and not report and not strong and not outcome:
            score -= 2  # "We propose X" with no outcome of its own is a does sentence
            cues.append("does")
        if _IMPLICATION.match(p):
            score -= 3
            cues.append("implication")
        if not strong and w & _VAGUE_GUARD and _VAGUE.search(p):
            score -= 2
            cues.append("vague")
        score += 0.5 * i / n  # results come late in an abstract
        if score >= RESULT_THRESHOLD:
            role = "result"
        elif does[i]:
            role = "does"
        elif before_does or (i == 0 and background):
            role = "background"
        else:
            role = "other"
        out.append(SentenceRole(i, role, round(score, 2), tuple(cues)))
    return tuple(out)


_INTRODUCES = re.compile(r"\b(?:propose|introduce|present|release|develop)s?\b(?! that)", re.IGNORECASE)


def _choose(parts: Sequence[str], roles: Sequence[SentenceRole], title: str) -> tuple[int, str]:
    results = [r for r in roles if r.role == "result"]
    if results:
        best = max(results, key=lambda r: (r.score, -r.index))
        return best.index, "result"
    does = [r for r in roles if r.role == "does"]
    if does:
        name = _name_from_title(title).lower()
        named = [r for r in does if name and name in parts[r.index].lower()]
        introduces = [r for r in does if _INTRODUCES.search(parts[r.index])]
        return (named or introduces or does)[0].index, "does"
    # No result, no "we ...": a blog teaser or a bare abstract. The sentence with the most evidence of a finding (a
    # number, an outcome word) if any, else the first full sentence past the background, else the first sentence.
    full = [r for r in roles if r.score > -5 and len(parts[r.index].split()) >= 6]
    hinted = [r for r in full if r.score >= 1 and r.role != "background"]
    if hinted:
        return max(hinted, key=lambda r: (r.score, -r.index)).index, "other"
    if roles[0].role == "background":
        for r in full:
            if r.index and r.role == "other" and not _BACKGROUND.search(parts[r.index].lower()):
                return r.index, "other"
    return 0, roles[0].role


def choose_sentence(parts: Sequence[str], claims: Iterable | None = None, title: str = "") -> tuple[int, str]:
    """(index, role) of the sentence the one-liner is made from: the best-scoring result sentence, else the
    "what we do" sentence (the one naming the title's method, else the first "we propose/introduce"), else the
    first sentence after the background; (-1, "") for no sentences."""
    if not parts:
        return -1, ""
    return _choose(parts, sentence_roles(parts, claims), title)


def _name_from_title(title: str) -> str:
    """The method a title names before its colon ("DFlash: Block Diffusion ..." -> "DFlash"), else ""."""
    head, sep, _ = (title or "").partition(":")
    head = head.strip()
    return head if sep and len(head) <= 40 and _NAME.match(head) else ""


def trim(sentence: str, title: str = "", limit: int = 240) -> str:
    """Light trimming: drop a reporting lead-in ("Experiments show that") and a trailing gloss (", demonstrating
    ..."), name the method for "Our method" when the title names it, and cut at a word boundary past `limit`."""
    text = _LINK_WORD.sub(r"\1", sentence.strip())
    cut = _LEAD_IN.match(text)
    # "We find that X, and that Y" keeps its lead-in: without it the second "that" clause dangles
    parallel = cut is not None and cut.group().rstrip().lower().endswith("that") and " and that " in text[cut.end() :]
    if cut and cut.end() and len(text) - cut.end() > 30 and not parallel:
        text = text[cut.end() :]
    name = _name_from_title(title)
    if name:
        text = _OUR_THING.sub(name, text, count=1)
        if text[:3].lower() == "it " and _NO_SUBJECT.match(text[3:]):
            text = text[3:]
        if _NO_SUBJECT.match(text):
            text = f"{name} {text[:1].lower()}{text[1:]}"
    if len(text) > limit:
        text = _TRAILING_GLOSS.sub(".", text.rstrip("."))
    text = text[:1].upper() + text[1:]
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"


ONE_LINE_HEAD = 4000  # one_line splits only this much of the text (abstracts are shorter; blog posts may not be)


def one_line(
    summary: str,
    limit: int = 240,
    parts: list[str] | None = None,
    *,
    title: str = "",
    claims: Iterable | None = None,
) -> str:
    """The sentence that states the main result (else what the paper does, else the first), lightly trimmed.

    `parts`: the sentences of the whole summary, when it is no longer than ONE_LINE_HEAD (the same split);
    `title`: names the method for "Our method ..."; `claims`: `extract_claims` of the summary, if already made."""
    sentence = one_line_sentence(summary, parts, title=title, claims=claims)
    return trim(sentence, title, limit) if sentence else ""


def one_line_sentence(
    summary: str, parts: list[str] | None = None, *, title: str = "", claims: Iterable | None = None
) -> str:
    """The sentence, untrimmed, that `one_line` is made from (same arguments): a page that also lists claim
    sentences can match it against `Claim.text` to say it once."""
    parts = sentences((summary or "")[:ONE_LINE_HEAD]) if parts is None else parts
    if not parts:
        return ""
    return parts[_choose(parts, sentence_roles(parts, claims), title)[0]]


_SKIP_POINT = re.compile(r"https?://|\bgithub\b|\b(?:is|are) available\b", re.IGNORECASE)


def key_points(
    summary: str,
    claim_sentences: list[str],
    limit: int = 4,
    parts: list[str] | None = None,
    *,
    title: str = "",
    exclude: Iterable[str] = (),
    claims: Iterable | None = None,
) -> list[str]:
    """Up to `limit` sentences, in text order, that say what the paper does and what it found, never the
    one-liner's sentence nor any sentence in `exclude` (e.g. those the page already shows with their numbers).

    Ranked: the first "what we do" sentence, then result sentences that carry claims (`claim_sentences`), then
    other result sentences; background, method detail and links are left out."""
    skip = {s.strip() for s in exclude}
    if parts is None:
        parts = sentences(summary)
        if len(summary or "") > ONE_LINE_HEAD:  # one_line chose from the head only: never repeat its sentence
            head = sentences(summary[:ONE_LINE_HEAD])
            if head:
                skip.add(head[_choose(head, sentence_roles(head, claims), title)[0]])
    if not parts:
        return []
    roles = sentence_roles(parts, claims)
    chosen, _ = _choose(parts, roles, title)
    claimed = {s.strip() for s in claim_sentences}
    candidates = [
        r
        for r in roles
        if r.index != chosen
        and parts[r.index] not in skip
        and r.role in ("result", "does")
        and len(parts[r.index]) > 20
        and not _SKIP_POINT.search(parts[r.index])
    ]
    first_does = next((r.index for r in candidates if r.role == "does"), None)

    def rank(r: SentenceRole) -> tuple:
        if r.index == first_does:
            return (0, 0.0, r.index)
        if r.role == "result":
            return (1 if parts[r.index] in claimed else 2, -r.score, r.index)
        return (3, 0.0, r.index)

    picked = sorted(sorted(candidates, key=rank)[:limit], key=lambda r: r.index)
    return [parts[r.index] for r in picked]
