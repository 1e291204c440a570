"""BibTeX: one writer for the site's item pages and `digest search --bibtex`, so both give the same entry.

Every field is made safe for BibTeX and LaTeX: text has LaTeX's special characters escaped (a `$` in a title
breaks pdflatex otherwise); identifiers (arXiv id, category, DOI) are written only when they have their
documented shape and are left out otherwise; URLs are percent-encoded where BibTeX would read structure
(braces, backslashes, quotes, whitespace). No value can close its field's braces, so none can start an entry.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from digest.normalize import clean_text

FIELD_MAX = 2000
# Standard arXiv identifiers: 2602.06036 (since 2007) and hep-th/9901001, math.AG/0601001 (before).
ARXIV_ID = re.compile(r"\d{4}\.\d{4,5}|[a-z]+(?:-[a-z]+)*(?:\.[A-Za-z]+(?:-[a-z]+)*)?/\d{7}")
# arXiv category terms: cs.LG, stat.ML, hep-th, math-ph, q-bio.NC, astro-ph.CO, cond-mat.stat-mech.
CATEGORY = re.compile(r"[a-z]+(?:-[a-z]+)*(?:\.[A-Za-z]+(?:-[a-z]+)*)?")
DOI = re.compile(r"10\.\d{4,9}/[\x21-\x7e]+")
_TEXT_SPECIAL = re.compile(r"[\\{}$&%#_~^]")
_TEXT_REPLACEMENT = {
    "\\": r"\textbackslash{}",
    "{": r"\textbraceleft{}",  # not \{: BibTeX counts that brace too, and one alone would unbalance the field
    "}": r"\textbraceright{}",
    "$": r"\$",
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_URL_UNSAFE = re.compile(r"[\x00-\x20\x7f{}\\\"]")


@dataclass(frozen=True)
class Reference:
    """What a BibTeX entry says of a finding; built by the site and by search from the same stored fields."""

    title: str
    authors: Sequence[str]
    year: int
    url: str = ""
    arxiv_id: str | None = None
    categories: Sequence[str] = field(default_factory=tuple)  # arXiv categories, the primary one first
    doi: str | None = None
    source: str = ""  # the feed a non-arXiv item came from (howpublished)


def escape(text: str) -> str:
    """Text for a BibTeX field read by LaTeX: control characters dropped, LaTeX's ten specials escaped."""
    return _TEXT_SPECIAL.sub(lambda m: _TEXT_REPLACEMENT[m.group(0)], clean_text(text, FIELD_MAX))


def safe_url(url: str) -> str:
    """An http(s) URL with what BibTeX or LaTeX would read as structure percent-encoded; '' for anything else."""
    url = (url or "").strip()
    if not re.match(r"https?://", url, re.IGNORECASE):
        return ""
    return _URL_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group(0).encode()), url[:FIELD_MAX])


def arxiv_id(value: str | None) -> str:
    """The arXiv id when it has an arXiv identifier's shape, else ''."""
    value = (value or "").strip()
    return value if ARXIV_ID.fullmatch(value) else ""


def primary_class(categories: Iterable[str]) -> str:
    """The primary arXiv category (stored first) when it is one, else '': never guessed."""
    first = next(iter(categories), "")
    return first if isinstance(first, str) and CATEGORY.fullmatch(first) else ""


def doi(value: str | None) -> str:
    value = (value or "").strip()
    value = re.sub(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)", "", value, flags=re.IGNORECASE)
    return value if DOI.fullmatch(value) and not _URL_UNSAFE.search(value) else ""


def _ascii_word(text: str) -> str:
    """Letters and digits of `text` in ASCII (accents dropped: 'Gödel' -> 'godel')."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]", "", plain).lower()


def key(ref: Reference) -> str:
    """surname + year + the arXiv number (unique per paper), or + the title's first word for other items."""
    first = ref.authors[0].split() if ref.authors and ref.authors[0] else []
    who = _ascii_word(first[-1] if first else "")[:30] or _ascii_word(ref.source)[:30] or "anon"
    eprint = arxiv_id(ref.arxiv_id)
    if eprint:
        tail = _ascii_word(eprint)
    else:
        word = next((w for w in re.findall(r"\w+", ref.title) if _ascii_word(w)), "")
        tail = _ascii_word(word)[:20]
    return f"{who}{ref.year}{tail}"


def entry(ref: Reference, cite_key: str | None = None) -> str:
    """One @misc entry. arXiv items carry eprint, archivePrefix and primaryClass (biblatex's and natbib's
    arXiv fields); other items howpublished (their source). Fields that would be empty are left out."""
    eprint = arxiv_id(ref.arxiv_id)
    fields = [
        ("title", "{" + escape(ref.title) + "}"),  # double braces: BibTeX styles keep the title's case
        ("author", escape(" and ".join(a for a in ref.authors if a.strip()))),
        ("year", str(int(ref.year))),
    ]
    if eprint:
        fields += [("eprint", eprint), ("archivePrefix", "arXiv"), ("primaryClass", primary_class(ref.categories))]
    else:
        fields.append(("howpublished", escape(ref.source)))
    fields += [("doi", doi(ref.doi)), ("url", safe_url(ref.url))]
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
    return f"@misc{{{cite_key or key(ref)},\n{body}\n}}"


def entries(refs: Iterable[Reference]) -> str:
    """Entries one after another, blank lines between; a key used twice gets b, c, ... after it."""
    out, seen = [], set()
    for ref in refs:
        base = cite = key(ref)
        n = 1
        while cite in seen:
            n += 1
            cite = base + _suffix(n)
        seen.add(cite)
        out.append(entry(ref, cite))
    return "\n\n".join(out)


def _suffix(n: int) -> str:
    """2 -> 'b', 26 -> 'z', 27 -> 'ba': a letter suffix as in 'smith2024b'."""
    letters = ""
    n -= 1
    while True:
        letters = chr(ord("a") + n % 26) + letters
        n //= 26
        if not n:
            return letters
