"""The reader's library (issue #16): real exports parsed, matched to findings, recommendations, similar papers."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from digest import recommend as rec
from digest import store
from digest.cli import main
from digest.embed import HashEmbedder, to_bytes
from digest.library import arxiv_from, normal_doi, normal_title, read_library
from digest.models import Embedding, utcnow
from digest.parse import Entry
from tests.conftest import ROOT, heavy_imports_of, write_config

REAL = Path(__file__).parent / "data" / "real" / "library"
NOW = utcnow().replace(microsecond=0)

# Three clear topics in words the fake (bag-of-words) embedder can tell apart.
TOPICS = {
    "compression": "context compression memory tokens autoencoder long prompts compress",
    "driving": "autonomous driving vehicle steering adversarial attack road camera",
    "volcano": "volcanic eruption lava ash magma crater geology",
}


def _entries() -> list[Entry]:
    out = []
    n = 0
    for topic, words in TOPICS.items():
        for k in range(12):
            n += 1
            ws = words.split()
            text = " ".join(ws[(k + j) % len(ws)] for j in range(5))
            out.append(
                Entry(
                    key=f"k:{topic}{k}",
                    title=f"{topic} study {k}: {text}",
                    url=f"https://example.test/{topic}/{k}",
                    summary=f"We study {text}. {words}.",
                    kind="paper",
                    authors=["Ada Lovelace"],
                    published=NOW - timedelta(days=k),
                    arxiv_id=f"2601.{n:05d}",
                    arxiv_version=1,
                )
            )
    # The real paper of the Zotero export, stored under its arXiv id.
    out.append(
        Entry(
            key="arxiv:2307.06945",
            title="In-context Autoencoder for Context Compression in a Large Language Model",
            url="https://arxiv.org/abs/2307.06945",
            summary="We propose the In-context Autoencoder to compress a long context into memory slots.",
            kind="paper",
            authors=["Tao Ge"],
            published=NOW - timedelta(days=30),
            arxiv_id="2307.06945",
            arxiv_version=1,
        )
    )
    # Known by title only (no arXiv id on our side): matched by normalised title.
    out.append(
        Entry(
            key="k:detr",
            title="Deformable DETR: deformable transformers for end-to-end object detection",
            url="https://example.test/detr",
            summary="Object detection with deformable attention.",
            kind="post",
            authors=[],
            published=NOW - timedelta(days=40),
        )
    )
    return out


@pytest.fixture
def corpus(db, tmp_path):
    engine = store.open_engine(db.url)
    store.init_db(engine)
    store.save_entries(engine, "arxiv", _entries())
    embedder = HashEmbedder()
    rows = db.rows("SELECT id, title, summary FROM item")
    with store.session(engine) as s:
        for item_id, title, summary in rows:
            vec = embedder.encode([f"{title} {summary}"])[0]
            s.add(Embedding(item_id=item_id, model=embedder.name, content_hash="h", dim=len(vec), vector=to_bytes(vec)))
        s.commit()
    engine.dispose()
    ids = {key.split("|", 1)[-1]: i for i, key in db.rows("SELECT id, key FROM item")}  # keys are per source
    return write_config(tmp_path, ""), ids


def cli(runner, cfg, *args, ok=True):
    result = runner.invoke(main, ["--config", str(cfg), *args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


# --- parsing real exports ------------------------------------------------------


def test_zotero_bibtex_export():
    records = read_library(REAL / "zotero.bib")
    assert [r.arxiv_id for r in records] == ["2402.06089", "2307.06945", "2409.14364", "2305.01582"]
    first = records[0]
    assert first.title == "AI Assistance for UX: A Literature Review Through Human-Centered AI"  # braces gone
    assert first.abstract.startswith("Recent advancements in HCI")
    assert first.authors[0] == "Yuwen Lu" or first.authors[0].startswith("Lu")
    assert first.doi == "10.48550/arxiv.2402.06089" and first.year == 2024


def test_arxiv_datacite_and_dblp_bibtex():
    datacite = read_library(REAL / "arxiv-datacite.bib")
    assert [r.arxiv_id for r in datacite] == ["2211.06679", "2010.04159", "2103.09151"]  # from the DOI alone
    other = read_library(REAL / "arxiv-and-dblp.bib")
    assert [r.arxiv_id for r in other] == ["2609.38886", "1705.05363"]


def test_ris_and_csl_json_exports():
    ris = read_library(REAL / "dblp-and-tool.ris")
    assert [(r.arxiv_id, r.title) for r in ris] == [
        ("1803.00653", "Semi-parametric Topological Memory for Navigation."),
        ("1706.03762", "Attention Is All You Need"),
    ]
    csl = read_library(REAL / "zotero-bbt.csl.json")
    assert len(csl) == 4
    assert csl[0].title == "The physical volcanology of the 1600 eruption of Huaynaputina, southern Peru"  # no <b>
    assert csl[1].doi == "10.1484/j.se.2.303788" and csl[1].key == "doi:10.1484/j.se.2.303788"
    assert csl[0].key.startswith("title:the physical volcanology")


def test_plain_list_and_duplicates(tmp_path):
    f = tmp_path / "ids.txt"
    f.write_text(
        "# my reading list\n2307.06945\nhttps://arxiv.org/abs/2307.06945v2\narXiv:2402.06089\n"
        "https://doi.org/10.48550/arXiv.2010.04159\n10.1145/3292500.3330701\n"
    )
    records = read_library(f)
    assert [r.key for r in records] == [
        "arxiv:2307.06945",
        "arxiv:2402.06089",
        "arxiv:2010.04159",
        "doi:10.1145/3292500.3330701",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2602.06036v2", "2602.06036"),
        ("arXiv:2402.06089 [cs]", "2402.06089"),
        ("abs/1705.05363", "1705.05363"),
        ("10.48550/ARXIV.2211.06679", "2211.06679"),
        ("http://arxiv.org/pdf/hep-th/9901001v1", "hep-th/9901001"),
        ("10.1145/3292500.3330701", None),
    ],
)
def test_arxiv_from(value, expected):
    assert arxiv_from(value) == expected


def test_normalisers():
    assert normal_title("In-context {Autoencoder} for <i>Context</i>") == "in context autoencoder for context"
    assert normal_title("Café  Über") == "cafe uber"
    assert normal_doi("https://doi.org/10.48550/ARXIV.2211.06679") == "10.48550/arxiv.2211.06679"


def test_bad_files_are_one_line_errors(runner, tmp_path):
    cfg = write_config(tmp_path, "")
    missing = cli(runner, cfg, "library", "import", str(tmp_path / "nope.bib"), ok=False)
    assert missing.exit_code == 1 and "nope.bib: library file not found" in missing.output
    bad = tmp_path / "bad.txt"
    bad.write_text("2307.06945\nnot an id\n")
    result = cli(runner, cfg, "library", "import", str(bad), ok=False)
    assert result.exit_code == 1 and "line 2: 'not an id'" in result.output and "Traceback" not in result.output
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    result = cli(runner, cfg, "library", "import", str(broken), ok=False)
    assert result.exit_code == 1 and "broken.json: not CSL JSON" in result.output


# --- import, matching, add/remove/list -------------------------------------------


def test_import_matches_by_arxiv_id_doi_and_title(runner, corpus, db):
    cfg, ids = corpus
    out = cli(runner, cfg, "library", "import", str(REAL / "zotero.bib")).output
    assert "1 are stored findings" in out and "3 kept with their own text" in out
    out = cli(runner, cfg, "library", "import", str(REAL / "arxiv-datacite.bib")).output
    assert "1 are stored findings" in out  # Deformable DETR, by normalised title
    rows = {k: (item, vec is not None) for k, item, vec in db.rows("SELECT key, item_id, vector FROM libraryentry")}
    assert rows["arxiv:2307.06945"] == (ids["arxiv:2307.06945"], False)
    assert rows["arxiv:2010.04159"] == (ids["k:detr"], False)
    assert rows["arxiv:2402.06089"] == (None, True)  # not stored: kept with its own text, embedded
    again = cli(runner, cfg, "library", "import", str(REAL / "zotero.bib")).output
    assert "Imported 0 new entries" in again and "4 already" in again
    listed = json.loads(cli(runner, cfg, "library", "list", "--json").output)
    assert len(listed) == 7


def test_add_remove_list(runner, corpus):
    cfg, _ = corpus
    assert "In-context Autoencoder" in cli(runner, cfg, "library", "add", "https://arxiv.org/abs/2307.06945v1").output
    assert "Already in the library" in cli(runner, cfg, "library", "add", "2307.06945").output
    assert "counts once ingested" in cli(runner, cfg, "library", "add", "2999.00001").output
    bad = cli(runner, cfg, "library", "add", "hello", ok=False)
    assert bad.exit_code == 1 and "'hello' is not an arXiv id" in bad.output
    assert "Removed arxiv:2999.00001" in cli(runner, cfg, "library", "remove", "2999.00001").output
    gone = cli(runner, cfg, "library", "remove", "2999.00001", ok=False)
    assert gone.exit_code == 1 and "is not in the library" in gone.output
    listed = cli(runner, cfg, "library", "list").output
    assert "arxiv:2307.06945" in listed and "In-context Autoencoder" in listed  # the stored finding's title
    rows = {r["key"]: r for r in json.loads(cli(runner, cfg, "library", "list", "--json").output)}
    assert (
        rows["arxiv:2307.06945"]["title"].startswith("In-context Autoencoder") and rows["arxiv:2307.06945"]["item_id"]
    )


# --- recommendations ---------------------------------------------------------------


def _add_topic(runner, cfg, topic, n):
    for k in range(n):
        cli(runner, cfg, "library", "add", f"2601.{list(TOPICS).index(topic) * 12 + k + 1:05d}")


@pytest.mark.parametrize("size", [2, 6])  # nearest centroid below MIN_LINEAR, the ridge model from it on
def test_recommend_ranks_the_library_topic_first(runner, corpus, size):
    cfg, ids = corpus
    _add_topic(runner, cfg, "driving", size)
    picks = json.loads(cli(runner, cfg, "recommend", "--json", "--limit", "5").output)
    assert len(picks) == 5
    assert all("driving" in p["title"] for p in picks), [p["title"] for p in picks]
    library_ids = {ids[f"k:driving{k}"] for k in range(size)}
    assert not library_ids & {p["id"] for p in picks}  # never recommends what you have
    first = picks[0]
    assert {"id", "title", "url", "arxiv_id", "tags", "claims", "score", "because"} <= set(first)
    assert first["because"] and all("driving study" in t for t in first["because"])
    text = cli(runner, cfg, "recommend", "--limit", "2").output
    assert "close to" in text and "in your library" in text


def test_recommend_since_and_empty_library(runner, corpus):
    cfg, _ = corpus
    empty = cli(runner, cfg, "recommend", ok=False)
    assert empty.exit_code == 1 and "library is empty" in empty.output
    _add_topic(runner, cfg, "volcano", 3)
    since = (NOW - timedelta(days=2)).date().isoformat()
    picks = json.loads(cli(runner, cfg, "recommend", "--json", "--since", since).output)
    assert picks and all(p["published"][:10] >= since for p in picks)


def test_own_text_entries_shape_the_profile(runner, corpus, tmp_path):
    """Entries not in the database still count: their own title and abstract are embedded at import."""
    cfg, _ = corpus
    lib = tmp_path / "mine.bib"
    lib.write_text(
        "@misc{a, title = {Lava flows and magma ascent at a crater}, abstract = {Volcanic eruption ash geology.}}\n"
        "@misc{b, title = {Magma crater eruption monitoring}, abstract = {Lava ash volcanic geology.}}\n"
    )
    cli(runner, cfg, "library", "import", str(lib))
    picks = json.loads(cli(runner, cfg, "recommend", "--json", "--limit", "3").output)
    assert all("volcano" in p["title"] for p in picks)
    assert picks[0]["because"][0] in {"Lava flows and magma ascent at a crater", "Magma crater eruption monitoring"}


def test_ridge_model_separates_a_synthetic_library():
    rng = np.random.default_rng(1)
    centre = rng.normal(size=32)
    pos = rec.unit_rows(centre + 0.3 * rng.normal(size=(20, 32)))
    neg = rec.unit_rows(rng.normal(size=(300, 32)))
    w, b = rec.train(pos, neg)
    assert (pos @ w + b).mean() > 0 > (neg @ w + b).mean()


def test_recommend_and_similar_import_no_torch(runner, corpus):
    cfg, _ = corpus
    cli(runner, cfg, "library", "add", "2601.00001")
    _, heavy = heavy_imports_of(cfg, ["recommend"], ["similar", "2601.00001"])
    assert heavy == []


# --- similar ---------------------------------------------------------------------------


def test_similar_papers(runner, corpus):
    cfg, ids = corpus
    rows = json.loads(cli(runner, cfg, "similar", "2601.00013", "--json").output)  # driving 0
    assert len(rows) == 5 and all("driving" in r["title"] for r in rows)
    assert ids["k:driving0"] not in {r["id"] for r in rows}
    assert rows == sorted(rows, key=lambda r: -r["score"])
    unknown = cli(runner, cfg, "similar", "2999.99999", ok=False)
    assert unknown.exit_code == 1 and "'2999.99999': no such finding" in unknown.output
    bad = cli(runner, cfg, "similar", "nonsense", ok=False)
    assert bad.exit_code == 1 and "not an arXiv id" in bad.output


def test_eval_recommend_runs_on_the_labelled_topics(runner, tmp_path):
    cfg = write_config(tmp_path, "")
    labelled = ROOT / "tests" / "data" / "topics_eval.jsonl"
    result = json.loads(cli(runner, cfg, "eval", "recommend", str(labelled), "--library-size", "5", "--json").output)
    assert len(result["per_topic"]) >= 15
    assert all(0 <= r["precision_at_10"] <= 1 for r in result["per_topic"].values())
    # Bag-of-words vectors still find the topic better than chance (one topic is ~1/17 of the corpus).
    assert result["mean_precision_at_10"] > 0.2


def test_neighbours_in_blocks_equal_one_row_at_a_time():
    from digest.foryou import neighbours

    rng = np.random.default_rng(4)
    mat = rec.unit_rows(rng.normal(size=(300, 16)))
    ids = np.arange(1000, 1300)
    blocked = neighbours(mat, ids, k=5, block=64)
    for row in (0, 63, 64, 299):
        expected = [(int(ids[j]), s) for j, s in rec.similar(mat, row, 5)]
        got = blocked[int(ids[row])]
        assert [i for i, _ in got] == [i for i, _ in expected]
        assert np.allclose([s for _, s in got], [s for _, s in expected], atol=1e-5)
    assert neighbours(mat[:1], ids[:1]) == {1000: []}


def test_item_pages_list_similar_papers_and_rebuilds_stay_incremental(corpus, db, tmp_path):
    from bs4 import BeautifulSoup

    from digest import pipeline
    from digest.config import load_config

    cfg, ids = corpus
    config = load_config(cfg)
    engine = store.open_engine(db.url)
    out = tmp_path / "site"
    _, written = pipeline.build_site(engine, config, out, search=False)
    assert written > 0
    page = next((out / "items").glob(f"{ids['k:driving0']}-*.html"))
    soup = BeautifulSoup(page.read_text(), "html.parser")
    links = soup.select("ul.similar a")
    assert len(links) == 5 and all("driving" in a.get_text() for a in links)
    assert all((page.parent / a["href"]).resolve().is_file() for a in links)  # each link is a built page
    assert list((config.workspace / "cache").glob("neighbours-*.npy"))
    assert pipeline.build_site(engine, config, out, search=False)[1] == 0  # nothing changed: nothing written
    engine.dispose()


def test_for_you_page_only_with_a_library(runner, corpus, db, tmp_path):
    from bs4 import BeautifulSoup

    from digest import pipeline
    from digest.config import load_config

    cfg, ids = corpus
    config = load_config(cfg)
    engine = store.open_engine(db.url)
    out = tmp_path / "site"
    pipeline.build_site(engine, config, out, search=False)
    assert not (out / "foryou.html").exists() and "For you" not in (out / "index.html").read_text()
    _add_topic(runner, cfg, "volcano", 6)
    pipeline.build_site(engine, config, out, search=False)
    soup = BeautifulSoup((out / "foryou.html").read_text(), "html.parser")
    picks = soup.select("div.pick")
    assert 0 < len(picks) <= pipeline.FORYOU_PAGE
    titles = [p.select_one("h3").get_text() for p in picks[:5]]
    assert all("volcano" in t for t in titles), titles
    assert all("in your library" in p.select_one("p.because").get_text() for p in picks)
    assert 'href="foryou.html"' in (out / "index.html").read_text()  # the nav links it, on every page
    library_ids = {ids[f"k:volcano{k}"] for k in range(6)}
    assert not any(f"/{i}-" in a["href"] for p in picks for a in p.select("h3 a") for i in library_ids)
    engine.dispose()


def test_newsletter_opens_with_for_you_only_with_a_library(runner, corpus, db, tmp_path):
    import email

    from digest import pipeline
    from digest.config import load_config

    cfg, _ = corpus
    config = load_config(cfg)
    engine = store.open_engine(db.url)
    week = pipeline.latest_week(engine)

    def issue() -> str:
        path = pipeline.build_newsletter(engine, config, week, tmp_path / "mail")
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        return message.get_body(("plain",)).get_content()

    assert "== For you ==" not in issue()
    for k in range(6, 12):  # the older driving papers: this week's driving papers are left to recommend
        cli(runner, cfg, "library", "add", f"2601.{12 + k + 1:05d}")
    text = issue()
    section = text.split("== For you ==", 1)[1].split("==", 1)[0]
    entries = [line for line in section.splitlines() if line.startswith("* ")]
    assert 0 < len(entries) <= pipeline.FORYOU_MAIL and all("driving" in e for e in entries[:3]), entries
    assert "Why: close to" in section
    titles = [e[2:] for e in entries]
    assert all(text.count(f"* {t}") == 1 for t in titles)  # shown once: not again in Top picks or a topic
    engine.dispose()


def test_hostile_csl_json_is_read_or_refused_in_one_line(runner, tmp_path):
    """CSL JSON written by hand (or by an attacker) may put any JSON type in any field: an author as a string, `issued`
    as a year or an empty list, a number for a DOI, arrays nested 100k deep. Never a traceback."""
    cfg = write_config(tmp_path, "")
    items = [
        {"title": "Author as a string", "author": "Smith"},
        {"title": "Authors as strings", "author": ["Smith", 3, None]},
        {"title": "Issued as text", "issued": "2020"},
        {"title": "Empty date parts", "issued": {"date-parts": [[]]}},
        {"title": ["not", "text"], "author": [{"given": 1, "family": "F"}], "DOI": 10.1, "URL": {"x": 1}},
        {"title": "Arxiv by number", "number": "arXiv:2307.06945", "issued": None, "id": None},
    ]
    good = tmp_path / "odd.json"
    good.write_text(json.dumps(items))
    out = cli(runner, cfg, "library", "import", str(good)).output
    assert "Imported 5 new entries" in out  # the one without a usable title or id is left out
    records = {r.title: r for r in read_library(good)}
    assert records["Issued as text"].year == 2020 and records["Authors as strings"].authors == ("Smith", "3")
    assert records["Author as a string"].authors == () and records["Arxiv by number"].arxiv_id == "2307.06945"
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    result = cli(runner, cfg, "library", "import", str(deep), ok=False)
    assert result.exit_code == 1 and "deep.json: not CSL JSON" in result.output and "Traceback" not in result.output


def test_a_huge_bibtex_field_is_cut_before_latex_decoding(tmp_path):
    """LaTeX decoding reads ~80k characters a second: a 50 MB abstract took a quarter of an hour. Fields are cut
    to FIELD_MAX first (an abstract that long is not one anyone wrote), accents still decoded."""
    from digest.library import FIELD_MAX

    bib = tmp_path / "huge.bib"
    bib.write_text("@article{a, title={Caf\\'e {Huge}}, abstract={" + "word \\'e " * 250_000 + "}}\n")
    (record,) = read_library(bib)  # the cut, not a stopwatch, is what is checked: no wall-clock assertions
    assert record.title == "Café Huge" and len(record.abstract) <= FIELD_MAX and record.abstract.startswith("word é")


@pytest.mark.parametrize("ref", ["99999999999999999999999", "²", "٣"])
def test_odd_ids_are_one_line_errors(runner, corpus, ref):
    """isdigit() is true for '²' (int() refuses it) and a 23-digit id overflows SQLite's INTEGER: both were
    tracebacks from `similar`, `library remove` and `library add`."""
    cfg, _ = corpus
    for args in (["similar", ref], ["library", "remove", ref], ["library", "add", ref]):
        result = cli(runner, cfg, *args, ok=False)
        assert result.exit_code == 1 and "Error:" in result.output, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)


def test_control_characters_never_reach_the_terminal(runner, tmp_path):
    """A title with ESC sequences (clear screen, an OSC 8 hyperlink) or NUL, or a DOI with them, from any import
    format: stored and printed without the control characters."""
    cfg = write_config(tmp_path, "")
    lib = tmp_path / "esc.json"
    title = "Evil \x1b[2J\x1b]8;;http://x.test\x07click\x1b]8;;\x07 \x00nul\x9b"
    lib.write_text(json.dumps([{"title": title, "DOI": "10.1000/ab\x00c\x1bd"}]))
    cli(runner, cfg, "library", "import", str(lib))
    listed = cli(runner, cfg, "library", "list").output
    assert not any(c in listed for c in "\x00\x07\x1b\x9b"), repr(listed)
    (row,) = json.loads(cli(runner, cfg, "library", "list", "--json").output)
    assert row["title"] == "Evil [2J]8;;http://x.testclick]8;; nul" and row["doi"] == "10.1000/ab"


def test_titles_in_other_scripts_are_distinct_entries(runner, tmp_path):
    """Keys kept only [a-z0-9]: every Chinese or Russian title (no DOI, no arXiv id) became 'title:', so a file of
    five such papers imported one and called the rest duplicates."""
    cfg = write_config(tmp_path, "")
    bib = tmp_path / "cjk.bib"
    bib.write_text(
        "@article{a, title={深度学习的注意力机制}}\n@article{b, title={强化学习综述}}\n"
        "@article{c, title={Обучение с подкреплением}}\n@article{d, title={Глубокое обучение}}\n"
        "@article{e, title={Caf\\'e {Attention}}}\n",
        encoding="utf-8",
    )
    records = read_library(bib)
    assert len(records) == 5 and len({r.key for r in records}) == 5
    assert (
        normal_title("Café {Attention}") == "cafe attention"
        and normal_title("Глубокое обучение!") == "глубокое обучение"
    )
    assert "Imported 5 new entries" in cli(runner, cfg, "library", "import", str(bib)).output


def test_huge_fields_of_any_format_are_cut(runner, tmp_path):
    """RIS and CSL JSON kept a 50 MB abstract whole (1 GB of memory, a 50 MB row, all of it handed to the embedder):
    every format's title and abstract are cut to FIELD_MAX."""
    from digest.library import FIELD_MAX

    cfg = write_config(tmp_path, "")
    ris = tmp_path / "big.ris"
    ris.write_text("TY  - JOUR\nTI  - Big one\nAB  - " + "word " * 200_000 + "\nER  - \n")
    csl = tmp_path / "big.json"
    csl.write_text(
        json.dumps([{"title": "T" * 100_000, "abstract": "a " * 100_000, "author": [{"literal": "x"}] * 5000}])
    )
    for path in (ris, csl):
        (record,) = read_library(path)
        assert len(record.title) <= FIELD_MAX and len(record.abstract) <= FIELD_MAX and len(record.authors) <= 1000
        assert "Imported 1 new entries" in cli(runner, cfg, "library", "import", str(path)).output
