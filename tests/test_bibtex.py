"""One BibTeX writer (digest.bibtex) for the site and `digest search --bibtex`, checked by parsing its output with
bibtexparser: hostile titles, URLs and arXiv ids cannot break or inject entries; site and CLI entries are equal."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace

import bibtexparser
import pytest
from pylatexenc.latex2text import LatexNodes2Text

from digest import bibtex, store
from digest.cli import main
from digest.demo import SNAPSHOT
from digest.normalize import clean_text
from digest.parse import parse_arxiv_page
from tests.conftest import ROOT, write_config

DATA = ROOT / "tests" / "data" / "real" / "arxiv"
ATOM, ARXIV = "{http://www.w3.org/2005/Atom}", "{http://arxiv.org/schemas/atom}"
PAPER = bibtex.Reference(
    title="Scaling laws for $100 & 50% of #GPUs_in {braces} ~ ^ back\\slash",
    authors=["Kurt Gödel", "Emmy Noether"],
    year=2026,
    url="https://arxiv.org/abs/2601.00001",
    arxiv_id="2601.00001",
    categories=["stat.ML", "cs.LG"],
    doi="10.1000/xyz.123",
)


def parsed(text: str):
    library = bibtexparser.parse_string(text)
    assert not library.failed_blocks, [b.error for b in library.failed_blocks]
    return library.entries


def fields(entry) -> dict[str, str]:
    return {f.key: f.value for f in entry.fields}


LATEX = {
    r"\textbackslash{}": "\\",
    r"\textbraceleft{}": "{",
    r"\textbraceright{}": "}",
    r"\textasciitilde{}": "~",
    r"\textasciicircum{}": "^",
    **{"\\" + c: c for c in "$&%#_"},
}


def latex_text(value: str) -> str:
    """The text LaTeX typesets for a field (the escapes Digest writes, read back; accents by pylatexenc)."""
    pattern = "|".join(re.escape(k) for k in sorted(LATEX, key=len, reverse=True))
    parts = re.split(f"({pattern})", value)
    return "".join(LATEX.get(part) or LatexNodes2Text().latex_to_text(part) for part in parts if part)


def test_special_characters_are_escaped_and_read_back_as_written():
    (entry,) = parsed(bibtex.entry(PAPER))
    f = fields(entry)
    assert entry.key == "godel2026260100001"  # surname without accents, year, arXiv number
    assert f["primaryClass"] == "stat.ML" and f["eprint"] == "2601.00001" and f["archivePrefix"] == "arXiv"
    assert f["doi"] == "10.1000/xyz.123" and f["url"] == "https://arxiv.org/abs/2601.00001"
    assert latex_text(f["title"].removeprefix("{").removesuffix("}")) == PAPER.title
    assert latex_text(f["author"]) == "Kurt Gödel and Emmy Noether"
    title = f["title"]
    # Every special is escaped: no bare $ & % # _ ~ ^ and no backslash that does not start a command.
    bare = re.sub(
        r"\\(textbackslash|textbraceleft|textbraceright|textasciitilde|textasciicircum)\{\}|\\[$&%#_]", "", title
    )
    assert not re.search(r"[$&%#_~^\\]", bare), title


HOSTILE_IDS = [
    "2601.00001},\n@misc{evil, title={pwned}",
    "2601.00001} @misc{evil,",
    "x}y",
]
HOSTILE_URLS = [
    "https://blog.test/a}, note={pwned}}\n@misc{evil, title={x}",
    "https://blog.test/{unbalanced",
    'https://blog.test/"quote',
    "https://blog.test/back\\slash}",
    "javascript:alert(1)",
]
HOSTILE_TITLES = ["}", "{", "}}}}\n@misc{evil, title={x}}", "\\", "\\}", "%}", "a\x00b\x1bc"]


@pytest.mark.parametrize("arxiv_id", HOSTILE_IDS)
@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_hostile_ids_and_urls_never_make_a_second_entry(arxiv_id, url):
    refs = [
        replace(PAPER, arxiv_id=arxiv_id, url=url, categories=["cs.LG}, @misc{x,"], doi="10.1/}@misc{y,"),
        replace(PAPER, title="Second"),
    ]
    entries = parsed(bibtex.entries(refs))
    assert len(entries) == 2
    first = fields(entries[0])
    assert "eprint" not in first and "primaryClass" not in first and "doi" not in first  # not an arXiv id
    assert set(first) - {"url"} == {"title", "author", "year"}, first  # nothing injected, no eprint
    assert not re.search(r"[{}\s\\]", first.get("url", "")), first["url"]


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_hostile_titles_and_authors_stay_inside_their_field(title):
    refs = [replace(PAPER, title=title, authors=[title, "B}} C"]), replace(PAPER, arxiv_id="2601.00002")]
    entries = parsed(bibtex.entries(refs))
    assert len(entries) == 2 and entries[1].key == "godel2026260100002"
    assert latex_text(fields(entries[0])["title"][1:-1]) == clean_text(title)  # control characters: spaces


def test_keys_are_unique_within_one_output():
    post = bibtex.Reference(title="Notes on speculative decoding", authors=[], year=2026, source="Lab blog")
    out = parsed(bibtex.entries([post, post, post, replace(post, authors=["Ada Lovelace"])]))
    assert [e.key for e in out] == ["labblog2026notes", "labblog2026notesb", "labblog2026notesc", "lovelace2026notes"]
    assert fields(out[0])["howpublished"] == "Lab blog" and "eprint" not in fields(out[0])


def test_no_primary_class_is_guessed():
    f = fields(parsed(bibtex.entry(replace(PAPER, categories=())))[0])
    assert "primaryClass" not in f and f["eprint"] == "2601.00001"


def test_site_and_cli_give_the_same_entries_for_the_demo_papers(runner, db, tmp_path):
    """The demo's arXiv snapshot through the real parser and store; every paper's entry on its page equals the
    one `digest search --bibtex` prints, with the paper's own primary category."""
    engine = store.open_engine(db.url)
    store.init_db(engine)
    for path in sorted((SNAPSHOT / "arxiv").glob("*.xml")):
        store.save_entries(engine, path.stem, parse_arxiv_page(path.read_bytes()).entries)
    engine.dispose()
    cfg = write_config(tmp_path, "")
    out = tmp_path / "site"
    result = runner.invoke(main, ["--config", str(cfg), "build", "--out", str(out), "--no-search"])
    assert result.exit_code == 0, result.output
    site = {}
    for page in (out / "items").glob("*.html"):
        found = re.search(
            r'<details class="bibtex"[^>]*><summary>BibTeX</summary><pre>(.*?)</pre>', page.read_text(), re.S
        )
        if found:
            (entry,) = parsed(html.unescape(found.group(1)))
            site[entry.key] = html.unescape(found.group(1))
    result = runner.invoke(main, ["--config", str(cfg), "search", "--bibtex", "--limit", "1000"])
    assert result.exit_code == 0, result.output
    cli = {e.key: e.raw.strip() for e in parsed(result.output)}
    assert len(site) >= 20, (result.output, sorted(out.iterdir()))
    assert site == cli
    # Each paper's primaryClass is its arxiv:primary_category in the capture (not one guessed for all).
    primary = {}
    for path in (SNAPSHOT / "arxiv").glob("*.xml"):
        for entry in ET.parse(path).getroot().iter(f"{ATOM}entry"):
            number = entry.findtext(f"{ATOM}id").rsplit("/", 1)[1].split("v")[0]
            primary[number] = entry.find(f"{ARXIV}primary_category").get("term")
    got = {fields(e)["eprint"]: fields(e)["primaryClass"] for e in parsed(result.output)}
    assert got == {k: v for k, v in primary.items() if k in got} and len(set(got.values())) > 5


@pytest.mark.parametrize("reference", ["", "&#65;"])  # a character reference takes the parser's per-element path
def test_the_primary_category_is_stored_first(fixture_bytes, reference):
    body = fixture_bytes("arxiv.xml").replace(
        b'<category term="cs.CL" scheme="http://arxiv.org/schemas/atom"/>',
        b'<category term="stat.ML" scheme="http://arxiv.org/schemas/atom"/>'
        b'<category term="cs.CL" scheme="http://arxiv.org/schemas/atom"/>',
    )
    body = body.replace(b"</summary>", reference.encode() + b"</summary>", 1)
    first = parse_arxiv_page(body).entries[0]
    assert first.tags == ["cs.CL", "stat.ML"]  # arxiv:primary_category says cs.CL, listed second


def test_doi_and_category_from_a_real_arxiv_response_reach_the_entry(runner, db, tmp_path):
    """A real arXiv API response (tests/data/real/arxiv/PROVENANCE) with <arxiv:doi>: parsed on both parser paths,
    stored, and cited by search --bibtex with its DOI and primary category."""
    body = (DATA / "arxiv-api-doi.xml").read_bytes()
    for variant in (body, body.replace(b"test1", b"test&#49;")):  # flat XSLT path, then per-element path
        entries = parse_arxiv_page(variant).entries
        assert [(e.arxiv_id, e.doi, e.tags) for e in entries] == [
            ("1510.05980", "10.1088/1742-6596/718/3/032006", ["astro-ph.CO", "hep-ph"]),
            ("1602.05902", "10.1088/1742-6596/718/3/032006", ["astro-ph.CO"]),
        ]
    engine = store.open_engine(db.url)
    store.init_db(engine)
    store.save_entries(engine, "arxiv-physics", parse_arxiv_page(body).entries)
    engine.dispose()
    cfg = write_config(tmp_path, "")
    out = runner.invoke(main, ["--config", str(cfg), "search", "--bibtex"]).output
    got = {e.key: fields(e) for e in parsed(out)}
    assert set(got) == {"gariazzo2015151005980", "gariazzo2016160205902"}
    first = got["gariazzo2015151005980"]
    assert (first["doi"], first["primaryClass"], first["eprint"]) == (
        "10.1088/1742-6596/718/3/032006",
        "astro-ph.CO",
        "1510.05980",
    )
    rows = runner.invoke(main, ["--config", str(cfg), "search", "--json"]).output
    assert "doi" not in json.loads(rows)[0]  # the JSON output keeps its fields
