"""Library: a reader's own papers, read from the files researchers already have (issue #16).

Pure: bytes or text in, `Record`s out. BibTeX through bibtexparser, RIS through rispy, CSL JSON through the json
module, and a plain list of arXiv ids, arXiv URLs or DOIs. Each record is keyed the way it will be matched against
stored findings: the arXiv id first, then the DOI, then the normalised title.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from digest.errors import DigestError
from digest.normalize import parse_arxiv_id

FORMATS = ("bibtex", "ris", "csl", "list")

_ARXIV_DOI = re.compile(r"^10\.48550/arxiv\.(.+)$", re.IGNORECASE)
_ARXIV_IN_TEXT = re.compile(
    r"(?:arxiv[:\s]*|abs/)(\d{4}\.\d{4,5}(?:v\d+)?|[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7}(?:v\d+)?)", re.IGNORECASE
)
_DOI_RE = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>{}\x00-\x1f\x7f-\x9f]+)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # not \t \n \r: those are whitespace
_TAGS = re.compile(r"<[^>]+>")
_NON_WORD = re.compile(r"[\W_]+")  # Unicode-aware: a Chinese or Russian title keeps its letters


@dataclass(frozen=True)
class Record:
    """One entry of a reader's library, as matched against stored findings."""

    title: str
    abstract: str = ""
    arxiv_id: str | None = None
    doi: str | None = None
    authors: tuple[str, ...] = field(default_factory=tuple)
    year: int | None = None
    origin: str = ""  # where it came from: a citation key, a RIS id or the line of a list

    @property
    def key(self) -> str:
        """The library's own key: arxiv:ID, else doi:DOI, else title:normalised-title."""
        if self.arxiv_id:
            return f"arxiv:{self.arxiv_id}"
        if self.doi:
            return f"doi:{self.doi}"
        return f"title:{normal_title(self.title)}"

    @property
    def text(self) -> str:
        """What the profile embeds for an entry that is not a stored finding."""
        return f"{self.title}\n{self.abstract}".strip()


def normal_title(title: str) -> str:
    """Case, accents, braces, markup and punctuation removed: 'In-context {Autoencoder}' -> 'in context autoencoder'.
    Letters of any script stay (ASCII-only keys made every Chinese title 'title:', one entry for all of them)."""
    text = unicodedata.normalize("NFKD", _TAGS.sub("", html.unescape(title or "")))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return _NON_WORD.sub(" ", text).strip()


def normal_doi(value: str | None) -> str | None:
    """'https://doi.org/10.48550/ARXIV.2211.06679' -> '10.48550/arxiv.2211.06679' (DOIs are case-insensitive)."""
    if not value:
        return None
    match = _DOI_RE.search(value.strip())
    return match.group(1).rstrip(".,;").lower() if match else None


def arxiv_from(*values: str | None) -> str | None:
    """The first arXiv id (without version) named by any value: an id, an abs/pdf URL, 'arXiv:ID', an arXiv DOI."""
    for value in values:
        if not value:
            continue
        value = str(value).strip()
        doi = normal_doi(value)
        if doi and (m := _ARXIV_DOI.match(doi)):
            value = m.group(1)
        parsed = parse_arxiv_id(value)
        if parsed is None and (m := _ARXIV_IN_TEXT.search(value)):
            parsed = parse_arxiv_id(m.group(1))
        if parsed:
            return parsed[0]
    return None


def _clean(text: str | None) -> str:
    # control characters go: an ESC in a title would reach the terminal of `library list` and `recommend`
    text = _CONTROL.sub("", _TAGS.sub("", html.unescape(str(text or ""))))
    return re.sub(r"\s+", " ", text.replace("{", "").replace("}", "")).strip()


def _year(value) -> int | None:
    match = re.search(r"\b(1[89]\d\d|20\d\d)\b", str(value or ""))
    return int(match.group(1)) if match else None


def _record(title, abstract, arxiv_id, doi, authors, year, origin) -> Record:
    doi = normal_doi(doi)
    arxiv_id = arxiv_id or arxiv_from(doi)
    # every format's fields are cut to FIELD_MAX: a 50 MB abstract is not stored, nor handed to the embedder
    title, abstract = _clean(str(title or "")[:FIELD_MAX]), _clean(str(abstract or "")[:FIELD_MAX])
    authors = tuple(str(a)[:500] for a in list(authors)[:1000] if a)
    return Record(title, abstract, arxiv_id, doi, authors, year, str(origin or "")[:500])


# --- formats -------------------------------------------------------------------


def detect_format(path: Path, text: str) -> str:
    """By extension, then by content."""
    suffix = path.suffix.lower()
    if suffix in (".bib", ".bibtex"):
        return "bibtex"
    if suffix == ".ris":
        return "ris"
    if suffix == ".json":
        return "csl"
    head = text.lstrip()[:2000]
    if head.startswith("@") or re.search(r"^\s*@\w+\s*\{", head, re.MULTILINE):
        return "bibtex"
    if re.search(r"^TY  - ", head, re.MULTILINE):
        return "ris"
    if head.startswith(("[", "{")):
        return "csl"
    return "list"


FIELD_MAX = 20_000  # characters of one BibTeX field (or @string) kept before LaTeX decoding


def _truncating_middleware():
    """A bibtexparser middleware cutting every field and @string to FIELD_MAX characters (run before decoding)."""
    from bibtexparser.middlewares.middleware import BlockMiddleware

    class Truncate(BlockMiddleware):
        def __init__(self):
            super().__init__(allow_inplace_modification=True)

        def transform_entry(self, entry, library):
            for f in entry.fields:
                if isinstance(f.value, str) and len(f.value) > FIELD_MAX:
                    f.value = f.value[:FIELD_MAX]
            return entry

        def transform_string(self, string, library):
            if isinstance(string.value, str) and len(string.value) > FIELD_MAX:
                string.value = string.value[:FIELD_MAX]
            return string

    return Truncate()


def parse_bibtex(text: str) -> list[Record]:
    import bibtexparser
    from bibtexparser import middlewares

    # LaTeX decoding runs about 80k characters a second: fields are cut to FIELD_MAX first, so a 50 MB abstract
    # costs a second, not the quarter hour it took decoded whole.
    library = bibtexparser.parse_string(
        text,
        append_middleware=[
            _truncating_middleware(),
            middlewares.LatexDecodingMiddleware(),
            middlewares.SeparateCoAuthors(),
        ],
    )
    if not library.entries and library.failed_blocks:
        raise DigestError(f"no BibTeX entry could be read ({len(library.failed_blocks)} broken blocks)")
    out = []
    for entry in library.entries:
        f = {k.lower(): v.value for k, v in entry.fields_dict.items()}
        authors = f.get("author") or []
        if isinstance(authors, str):
            authors = [a.strip() for a in authors.split(" and ")]
        eprint = f.get("eprint") if str(f.get("archiveprefix", f.get("eprinttype", "arxiv"))).lower() == "arxiv" else ""
        arxiv_id = arxiv_from(eprint, f.get("url"), f.get("note"), f.get("journal"), f.get("volume"), f.get("doi"))
        out.append(
            _record(
                f.get("title", ""),
                f.get("abstract", ""),
                arxiv_id,
                f.get("doi"),
                [_clean(a) for a in authors],
                _year(f.get("year") or f.get("date")),
                entry.key,
            )
        )
    return out


def parse_ris(text: str) -> list[Record]:
    import rispy

    try:
        entries = rispy.loads(text, skip_unknown_tags=True)
    except Exception as exc:  # rispy raises plain IOError/ValueError subclasses on malformed files
        raise DigestError(f"not a RIS file: {exc}") from None
    out = []
    for e in entries:
        urls = e.get("urls") or []
        arxiv_id = arxiv_from(*urls, e.get("volume"), e.get("doi"), e.get("notes_abstract"), e.get("number"))
        title = e.get("title") or e.get("primary_title") or ""
        out.append(
            _record(
                title,
                e.get("abstract", ""),
                arxiv_id,
                e.get("doi"),
                list(e.get("authors") or e.get("first_authors") or []),
                _year(e.get("year") or e.get("date")),
                e.get("id", ""),
            )
        )
    return out


def parse_csl(text: str) -> list[Record]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DigestError(f"not CSL JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise DigestError("not CSL JSON: nested too deeply") from None
    if isinstance(data, dict):
        data = data.get("items", [data])
    if not isinstance(data, list):
        raise DigestError("not CSL JSON: expected a list of items")
    out = []
    for e in data:
        if not isinstance(e, dict):
            continue
        # A hand-written or hostile file may give any JSON type anywhere: only the expected shapes are read.
        authors = e.get("author") if isinstance(e.get("author"), list) else []
        names = [_csl_name(a) if isinstance(a, dict) else _text(a) for a in authors]
        issued = e.get("issued") if isinstance(e.get("issued"), dict) else {"raw": e.get("issued")}
        parts = issued.get("date-parts")
        first = parts[0] if isinstance(parts, list) and parts else None
        year = first[0] if isinstance(first, list) and first else issued.get("raw")
        link = [_text(e.get(k)) for k in ("URL", "number", "DOI", "archive_location", "note")]
        out.append(
            _record(
                _text(e.get("title")),
                _text(e.get("abstract")),
                arxiv_from(*link),
                link[2],
                names,
                _year(year),
                _text(e.get("id")),
            )
        )
    return out


def _text(value) -> str:
    """A CSL field as text: strings and numbers as they are, anything else (lists, objects, null) empty."""
    return str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else ""


def _csl_name(author: dict) -> str:
    return " ".join(_text(author.get(k)) for k in ("given", "family") if _text(author.get(k))) or _text(
        author.get("literal")
    )


def parse_list(text: str) -> list[Record]:
    """One arXiv id, arXiv URL or DOI per line; '#' starts a comment."""
    out = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        arxiv_id, doi = arxiv_from(line), normal_doi(line)
        if not arxiv_id and not doi:
            raise DigestError(f"line {n}: {line[:80]!r} is not an arXiv id, arXiv URL or DOI")
        out.append(Record("", "", arxiv_id, doi, (), None, line))
    return out


PARSERS = {"bibtex": parse_bibtex, "ris": parse_ris, "csl": parse_csl, "list": parse_list}


def read_library(path: Path, fmt: str | None = None) -> list[Record]:
    """Records of a library file, duplicates (same key) merged, first seen first; errors name the file."""
    if not path.is_file():
        raise DigestError(f"{path}: library file not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_bytes().decode("latin-1")
    fmt = fmt or detect_format(path, text)
    try:
        records = PARSERS[fmt](text)
    except DigestError as exc:
        raise DigestError(f"{path}: {exc}") from None
    seen: dict[str, Record] = {}
    for r in records:
        if r.title or r.arxiv_id or r.doi:
            seen.setdefault(r.key, r)
    return list(seen.values())


def parse_item(ref: str) -> Record:
    """`library add ITEM`: an arXiv id or URL, or a DOI."""
    arxiv_id, doi = arxiv_from(ref), normal_doi(ref)
    if not arxiv_id and not doi:
        raise DigestError(f"{ref!r} is not an arXiv id, arXiv URL or DOI")
    return Record("", "", arxiv_id, doi, (), None, ref)
