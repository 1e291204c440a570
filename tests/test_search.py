"""Search: full text, filters, semantic and hybrid ranking, output formats, tags, safety, lean imports."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest import store
from digest.cli import main
from digest.embed import HashEmbedder, to_bytes
from digest.models import Claim, Embedding, ItemTopic, ReproHook, ReproRun, Topic, utcnow
from digest.parse import Entry
from tests.conftest import heavy_imports_of, write_config

NOW = utcnow().replace(microsecond=0)
PAPERS = [
    # key, title, summary, source, days ago, tags, arxiv id
    (
        "a",
        "Speculative decoding with a tiny drafter",
        "A draft model proposes tokens; 3.1x faster.",
        "arxiv",
        1,
        ["speculative-decoding"],
        "2601.00001",
    ),
    (
        "b",
        "KV cache compression by quantization",
        "We quantize the key-value cache to 2 bits.",
        "arxiv",
        2,
        ["kv-cache"],
        "2601.00002",
    ),
    (
        "c",
        "Speculative decoding meets KV cache sharing",
        "Drafting reuses the cache of the target model.",
        "blog",
        3,
        ["speculative-decoding", "kv-cache"],
        None,
    ),
    (
        "d",
        "Sparse autoencoders find circuits",
        "Interpretability of attention heads with dictionaries.",
        "blog",
        40,
        ["interpretability"],
        None,
    ),
]


def entry(key, title, summary, days, arxiv_id=None, authors=("Ada Lovelace",)):
    return Entry(
        key=f"k:{key}",
        title=title,
        url=f"https://example.test/{key}",
        summary=summary,
        kind="paper" if arxiv_id else "post",
        authors=list(authors),
        published=NOW - timedelta(days=days),
        arxiv_id=arxiv_id,
        arxiv_version=1 if arxiv_id else None,
        tags=["cs.CL", "cs.LG"] if arxiv_id else [],  # arXiv categories, the primary one first
    )


@pytest.fixture
def corpus(db, tmp_path):
    """Four findings with tags, one claim reproduced, one diverged; vectors from the fake embedder."""
    engine = store.open_engine(db.url)
    store.init_db(engine)
    for key, title, summary, source, days, _, arxiv_id in PAPERS:
        store.save_entries(engine, source, [entry(key, title, summary, days, arxiv_id)])
    ids = {r[1].split("|", 1)[-1].removeprefix("k:"): r[0] for r in db.rows("SELECT id, key FROM item")}
    embedder = HashEmbedder()
    with store.session(engine) as s:
        for slug in ("speculative-decoding", "kv-cache", "interpretability"):
            s.add(Topic(slug=slug, name=slug))
        s.flush()
        for key, title, summary, *_rest in PAPERS:
            tags = _rest[2]
            for rank, slug in enumerate(tags):
                s.add(ItemTopic(item_id=ids[key], topic_slug=slug, score=0.9 - rank / 10))
            vec = embedder.encode([f"{title} {summary}"])[0]
            s.add(
                Embedding(item_id=ids[key], model=embedder.name, content_hash="h", dim=len(vec), vector=to_bytes(vec))
            )
        ca = Claim(item_id=ids["a"], value=3.1, unit="x", kind="speedup", text="3.1x faster")
        cb = Claim(item_id=ids["b"], value=2, unit="bits", kind="bits", text="2 bits")
        s.add_all([ca, cb])
        s.flush()
        hook_a = ReproHook(claim_id=ca.id, command="true")
        hook_b = ReproHook(claim_id=cb.id, command="true")
        s.add_all([hook_a, hook_b])
        s.flush()
        t0 = NOW - timedelta(hours=2)
        s.add(ReproRun(hook_id=hook_a.id, claim_id=ca.id, verdict="diverged", started_at=t0))
        s.add(ReproRun(hook_id=hook_a.id, claim_id=ca.id, verdict="reproduced", started_at=t0 + timedelta(hours=1)))
        # A later run skipped for want of a GPU measures nothing: a's verdict stays reproduced (#17).
        s.add(ReproRun(hook_id=hook_a.id, claim_id=ca.id, verdict="skipped", started_at=t0 + timedelta(hours=1.5)))
        s.add(ReproRun(hook_id=hook_b.id, claim_id=cb.id, verdict="reproduced", started_at=t0))
        s.add(ReproRun(hook_id=hook_b.id, claim_id=cb.id, verdict="diverged", started_at=t0 + timedelta(hours=1)))
        s.commit()
    engine.dispose()
    cfg = write_config(tmp_path, "")
    return cfg, ids, engine


def search(runner, cfg, *args, ok=True):
    result = runner.invoke(main, ["--config", str(cfg), "search", *args, "--format", "jsonl"])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def keys(result, ids):
    back = {v: k for k, v in ids.items()}
    return [back[json.loads(line)["id"]] for line in result.output.splitlines() if line.strip()]


def test_full_text_ranks_title_hits_first_and_stems(runner, corpus):
    cfg, ids, _ = corpus
    assert keys(search(runner, cfg, "speculative"), ids) == ["a", "c"]
    assert keys(search(runner, cfg, "quantized"), ids) == ["b"]  # porter stemming: quantize
    assert keys(search(runner, cfg, "cache speculative"), ids) == ["c"]  # every word must match
    assert keys(search(runner, cfg, "nonexistentword"), ids) == []


def test_fts_follows_ingest_updates(runner, corpus):
    cfg, ids, engine = corpus
    engine = store.open_engine(str(engine.url))
    counts = store.save_entries(
        engine, "arxiv", [entry("a", "Lookahead decoding, renamed", "Jacobi steps.", 1, "2601.00001")]
    )
    assert counts.updated == 1
    assert keys(search(runner, cfg, "speculative"), ids) == ["c"]
    assert keys(search(runner, cfg, "jacobi"), ids) == ["a"]
    engine.dispose()


@pytest.mark.parametrize(
    "query", ['"', "AND", "NEAR(a b)", "spec*", "title:kv", "a OR", "(((", "'; DROP TABLE item; --", "\x00kv"]
)
def test_hostile_query_text_never_breaks(runner, corpus, query):
    cfg, ids, _ = corpus
    result = runner.invoke(main, ["--config", str(cfg), "search", query, "--json"])
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 1:
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert keys(search(runner, cfg, "--limit", "50"), ids) == ["a", "b", "c", "d"]  # nothing was dropped


def test_filters(runner, corpus):
    cfg, ids, _ = corpus
    assert keys(search(runner, cfg, "--tag", "kv-cache"), ids) == ["b", "c"]  # newest first
    assert keys(search(runner, cfg, "--tag", "kv-cache", "--tag", "speculative-decoding"), ids) == ["c"]
    assert keys(search(runner, cfg, "--any-tag", "interpretability", "--any-tag", "kv-cache"), ids) == ["b", "c", "d"]
    assert keys(search(runner, cfg, "--source", "blog"), ids) == ["c", "d"]
    since = (NOW - timedelta(days=2)).date().isoformat()
    assert keys(search(runner, cfg, "--since", since), ids) == ["a", "b"]
    until = (NOW - timedelta(days=3)).date().isoformat()
    assert keys(search(runner, cfg, "--until", until), ids) == ["c", "d"]
    assert keys(search(runner, cfg, "--has-claims"), ids) == ["a", "b"]
    assert keys(search(runner, cfg, "--reproduced"), ids) == ["a"]  # b's latest run diverged; a's later one skipped
    assert keys(search(runner, cfg, "speculative", "--source", "arxiv"), ids) == ["a"]
    assert keys(search(runner, cfg, "--limit", "1"), ids) == ["a"]
    # A large limit makes the rarest tag's item list lead instead of a newest-first scan: same answers.
    assert keys(search(runner, cfg, "--tag", "kv-cache", "--limit", "5000"), ids) == ["b", "c"]
    assert keys(search(runner, cfg, "--tag", "kv-cache", "--tag", "interpretability", "--limit", "5000"), ids) == []
    bad = search(runner, cfg, "--since", "2026-02-01", "--until", "2026-01-01", ok=False)
    assert bad.exit_code == 1 and "--since 2026-02-01 is after --until 2026-01-01" in bad.output


@pytest.mark.parametrize(
    "args",
    [
        ["--tag", "kv-cache"],
        ["--tag", "kv-cache", "--tag", "speculative-decoding"],
        ["--tag", "interpretability", "--tag", "kv-cache"],  # none has both
        ["--source", "blog"],
        ["--has-claims", "--any-tag", "kv-cache"],
    ],
)
def test_filter_plans_agree(runner, corpus, monkeypatch, args):
    """The bounded newest-first look, the tag-led plan and the full scan return the same findings."""
    cfg, ids, _ = corpus
    expected = keys(search(runner, cfg, *args), ids)
    monkeypatch.setattr("digest.search.SCAN_STEPS", 1)
    assert keys(search(runner, cfg, *args), ids) == expected


def test_semantic_and_hybrid(runner, corpus, tmp_path):
    cfg, ids, _ = corpus
    sem = keys(search(runner, cfg, "--semantic", "Sparse autoencoders find circuits"), ids)
    assert sem[0] == "d" and sorted(sem) == ["a", "b", "c", "d"]
    cache = list((tmp_path / "ws" / "cache").glob("vectors-*.npy"))
    assert len(cache) == 2  # ids + matrix
    assert keys(search(runner, cfg, "--semantic", "circuits", "--tag", "kv-cache"), ids)[0] in ("b", "c")
    assert "d" not in keys(search(runner, cfg, "--semantic", "circuits", "--tag", "kv-cache"), ids)
    hybrid = keys(search(runner, cfg, "decoding", "--semantic", "key-value cache quantization"), ids)
    assert set(hybrid) == {"a", "b", "c", "d"} and hybrid[0] == "c"  # c is in both rankings
    assert keys(search(runner, cfg, "speculative", "--hybrid", "--limit", "2"), ids)[0] in ("a", "c")


def test_vector_cache_follows_new_embeddings(runner, corpus, db):
    cfg, ids, _ = corpus
    first = keys(search(runner, cfg, "--semantic", "jacobi lookahead"), ids)
    engine = store.open_engine(db.url)
    vec = HashEmbedder().encode(["jacobi lookahead"])[0]
    store.save_embeddings(
        engine, [Embedding(item_id=ids["d"], model="fake-hash-64", content_hash="h2", dim=64, vector=to_bytes(vec))]
    )
    engine.dispose()
    second = keys(search(runner, cfg, "--semantic", "jacobi lookahead"), ids)
    assert second[0] == "d" and first[0] != "d"


def test_vector_cache_follows_a_new_finding(runner, corpus, db):
    """A new item is searchable once its vector is stored (the item insert itself does not bump the revision)."""
    cfg, ids, _ = corpus
    assert "e" not in keys(search(runner, cfg, "--semantic", "mixture of experts routing"), ids)
    engine = store.open_engine(db.url)
    rev = db.one("SELECT value FROM search_state WHERE key = 'vectors_rev'")
    store.save_entries(engine, "arxiv", [entry("e", "Mixture of experts routing", "Experts route tokens.", 0)])
    new_id = db.one("SELECT id FROM item WHERE key = 'arxiv|k:e'")  # keys are per source
    vec = HashEmbedder().encode(["mixture of experts routing"])[0]
    store.save_embeddings(
        engine, [Embedding(item_id=new_id, model="fake-hash-64", content_hash="h", dim=64, vector=to_bytes(vec))]
    )
    engine.dispose()
    assert db.one("SELECT value FROM search_state WHERE key = 'vectors_rev'") != rev
    ids = {**ids, "e": new_id}
    assert keys(search(runner, cfg, "--semantic", "mixture of experts routing"), ids)[0] == "e"


def test_output_formats(runner, corpus):
    cfg, ids, _ = corpus
    rows = json.loads(runner.invoke(main, ["--config", str(cfg), "search", "speculative", "--json"]).output)
    assert [r["id"] for r in rows] == [ids["a"], ids["c"]]
    assert rows[0]["tags"][0]["slug"] == "speculative-decoding" and rows[0]["claims"][0]["unit"] == "x"
    bib = runner.invoke(main, ["--config", str(cfg), "search", "speculative", "--bibtex"]).output
    assert "@misc{lovelace" in bib and "eprint = {2601.00001}" in bib and "archivePrefix = {arXiv}" in bib
    assert "primaryClass = {cs.CL}" in bib and bib.count("@misc") == 2
    table = runner.invoke(main, ["--config", str(cfg), "search", "speculative"], env={"COLUMNS": "250"}).output
    assert "Speculative decoding with a tiny drafter" in table and "3.1× speed-up" in table  # the headline phrase
    assert rows[0]["headline"]["text"] == "3.1× speed-up" and rows[0]["one_line"].startswith("A draft model")
    assert "No results." in runner.invoke(main, ["--config", str(cfg), "search", "zebra"]).output


def test_tags_counts_and_trend(runner, corpus):
    cfg, _, _ = corpus
    week = NOW.date().isocalendar()
    result = runner.invoke(main, ["--config", str(cfg), "tags", "--week", f"{week.year}-W{week.week:02d}", "--json"])
    rows = {r["tag"]: r for r in json.loads(result.output)}
    assert rows["kv-cache"]["count"] == 2 and rows["interpretability"]["count"] == 1
    assert rows["interpretability"]["this_week"] == 0
    total_recent = sum(r["this_week"] + 4 * r["avg_4w"] for r in rows.values())
    assert total_recent == 4  # a, b, c (kv + spec) all within five weeks; d is 40 days old
    assert runner.invoke(main, ["--config", str(cfg), "tags"]).exit_code == 0


def test_text_and_tag_search_import_no_torch(corpus, db):
    cfg, _, _ = corpus
    _, heavy = heavy_imports_of(cfg, ["search", "speculative"], ["search", "--tag", "kv-cache"], ["tags"])
    assert heavy == []


OPTION = st.one_of(
    st.tuples(
        st.sampled_from(["--tag", "--any-tag", "--source", "--since", "--until", "--limit", "--format"]),
        st.text(max_size=12),
    ),
    st.tuples(st.sampled_from(["--has-claims", "--reproduced", "--json", "--bibtex"])),
    st.tuples(st.just("--semantic"), st.text(min_size=1, max_size=20)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=40), options=st.lists(OPTION, max_size=4))
def test_random_queries_answer_or_fail_in_one_line(runner, corpus, query, options):
    cfg, _, _ = corpus
    args = (
        ["--config", str(cfg), "search", "--", query]
        if query.startswith("-")
        else ["--config", str(cfg), "search", query]
    )
    for opt in options:
        args[3:3] = list(opt)
    result = runner.invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 1:
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    else:
        assert result.exit_code in (0, 2), result.output


def test_search_on_old_database_upgrades_it(runner, db, tmp_path):
    from digest import migrations

    engine = store.open_engine(db.url)
    migrations.migrate(engine, upto=1)
    store.save_entries(engine, "blog", [entry("z", "Mixture of experts routing", "Load balancing.", 1)])
    engine.dispose()
    assert migrations.LATEST > 1
    cfg = write_config(tmp_path, "")
    assert json.loads(search(runner, cfg, "routing").output)["title"] == "Mixture of experts routing"
    assert [r[0] for r in db.rows("SELECT version FROM digest_migrations ORDER BY version")] == list(
        range(1, migrations.LATEST + 1)
    )


def test_published_is_iso(runner, corpus):
    cfg, _, _ = corpus
    row = json.loads(search(runner, cfg, "quantization").output)
    assert datetime.fromisoformat(row["published"]) == NOW - timedelta(days=2)


def test_text_filters_look_past_the_best_matches(runner, db, tmp_path):
    """Filters that reject the top FTS matches make the search look deeper, not come back short."""
    engine = store.open_engine(db.url)
    store.init_db(engine)
    crowd = [entry(f"n{n}", f"Gizmo gizmo report {n}", "gizmo", 1) for n in range(80)]
    store.save_entries(engine, "blog", crowd)
    store.save_entries(engine, "arxiv", [entry("far", "An unrelated title", "one gizmo mention", 9)])
    engine.dispose()
    cfg = write_config(tmp_path, "")
    rows = [
        json.loads(x) for x in search(runner, cfg, "gizmo", "--source", "arxiv", "--limit", "1").output.splitlines()
    ]
    assert [r["title"] for r in rows] == ["An unrelated title"]
    assert len(search(runner, cfg, "gizmo", "--limit", "100").output.splitlines()) == 81


def test_broken_database_is_one_line(runner, tmp_path):
    bad = tmp_path / "not.db"
    bad.write_bytes(b"this is not a database file at all, just text" * 100)
    result = runner.invoke(main, ["--db", f"sqlite:///{bad}", "search", "anything"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert result.output.startswith(f"Error: cannot open database 'sqlite:///{bad}': file is not a database")


def test_a_mistyped_database_path_is_an_error_not_an_empty_answer(runner, tmp_path):
    cfg = write_config(tmp_path, "")
    missing = tmp_path / "digst.db"
    for args in (["search", "cache"], ["tags"], ["recommend"]):
        result = runner.invoke(main, ["--config", str(cfg), "--db", f"sqlite:///{missing}", *args])
        assert result.exit_code == 1 and f"database {missing} does not exist" in result.output, result.output
    assert not missing.exists()  # and nothing was created
