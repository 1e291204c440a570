"""Numbered migrations (upgrade from an older schema) and `digest migrate-db` between databases."""

from __future__ import annotations

import json
from datetime import datetime

from sqlmodel import Session, SQLModel

from digest import migrations, store
from digest.cli import main
from digest.embed import HashEmbedder, to_bytes
from digest.models import Claim, Embedding, Item, ItemTopic, Topic
from tests.conftest import write_config

TABLES = ["item", "topic", "itemtopic", "claim", "embedding"]


def test_old_databases_are_upgraded(db):
    engine = store.open_engine(db.url)
    migrations.migrate(engine, upto=1)
    with Session(engine) as s:
        s.add(Item(key="k1", source="blog", title="Rotary embeddings explained", published=datetime(2026, 1, 5)))
        s.commit()
    assert db.rows("SELECT version, name FROM digest_migrations") == [(1, "m001_create_tables")]
    store.init_db(engine)
    versions = [r[0] for r in db.rows("SELECT version FROM digest_migrations ORDER BY version")]
    assert versions == list(range(1, migrations.LATEST + 1))
    assert db.one("SELECT value FROM search_state WHERE key = 'vectors_rev'") is not None
    if db.dialect == "sqlite":
        assert db.one("SELECT rowid FROM item_fts WHERE item_fts MATCH 'rotary'") == 1
    else:
        assert db.one("SELECT id FROM item WHERE search_tsv @@ plainto_tsquery('english', 'rotary')") == 1
    store.init_db(engine)  # idempotent: nothing pending, nothing re-run
    assert db.one("SELECT count(*) FROM digest_migrations") == migrations.LATEST
    engine.dispose()


def test_database_from_before_migrations_is_upgraded(db):
    engine = store.open_engine(db.url)
    SQLModel.metadata.create_all(engine)  # what the walking skeleton's init_db made
    store.init_db(engine)
    assert db.one("SELECT count(*) FROM digest_migrations") == migrations.LATEST
    engine.dispose()


def fill(url: str) -> dict[str, int]:
    """A source database with a post ingested before the paper it covers (a forward self-reference)."""
    engine = store.open_engine(url)
    store.init_db(engine)
    vec = HashEmbedder().encode(["paged attention"])[0]
    with Session(engine) as s:
        post = Item(key="post", source="blog", title="Why paged attention matters", published=datetime(2026, 1, 2))
        paper = Item(
            key="arxiv:1",
            kind="paper",
            source="arxiv",
            title="Paged attention for serving",
            summary="A KV cache in pages.",
            arxiv_id="2601.1",
            published=datetime(2026, 1, 1),
        )
        s.add(post)
        s.flush()
        s.add(paper)
        s.flush()
        post.covers_item_id = paper.id
        s.add(Topic(slug="kv-cache", name="KV cache"))
        s.flush()
        s.add(ItemTopic(item_id=paper.id, topic_slug="kv-cache", score=0.8))
        s.add(Claim(item_id=paper.id, value=2.0, unit="x", text="2x throughput"))
        s.add(Embedding(item_id=paper.id, model="fake-hash-64", content_hash="h", dim=64, vector=to_bytes(vec)))
        ids = {"post": post.id, "paper": paper.id}
        s.commit()
    engine.dispose()
    return ids


def copy_and_check(runner, tmp_path, src_url: str, dst_url: str, dst_db) -> None:
    ids = fill(src_url)
    result = runner.invoke(main, ["--db", src_url, "migrate-db", "--to", dst_url])
    assert result.exit_code == 0, result.output
    assert "Copied 6 rows" in result.output.splitlines()[-1]
    assert dst_db.one("SELECT covers_item_id FROM item WHERE id = :i", i=ids["post"]) == ids["paper"]
    assert dst_db.one("SELECT count(*) FROM embedding") == 1
    cfg = write_config(tmp_path, "")
    found = runner.invoke(main, ["--config", str(cfg), "--db", dst_url, "search", "paged", "--json"])
    assert [r["arxiv_id"] for r in json.loads(found.output)] == ["2601.1"]  # the post is folded into its paper
    assert json.loads(found.output)[0]["coverage"] and json.loads(found.output)[0]["claims"][0]["unit"] == "x"
    # New rows get fresh ids after the copy (PostgreSQL sequences are moved past the copied ids).
    engine = store.open_engine(dst_url)
    with Session(engine) as s:
        s.add(Item(key="new", source="blog", title="After the move", published=datetime(2026, 2, 1)))
        s.commit()
    engine.dispose()
    assert dst_db.one("SELECT id FROM item WHERE key = 'new'") == max(ids.values()) + 1
    again = runner.invoke(main, ["--db", src_url, "migrate-db", "--to", dst_url])
    assert again.exit_code == 1 and "not empty (rows in " in again.output


def test_migrate_db_sqlite_to_sqlite(runner, tmp_path):
    from tests.conftest import DB

    dst = f"sqlite:///{tmp_path / 'copy.db'}"
    copy_and_check(runner, tmp_path, f"sqlite:///{tmp_path / 'src.db'}", dst, DB(dst))


def test_migrate_db_sqlite_to_test_database(runner, tmp_path, db):
    """Into the suite's database: SQLite to PostgreSQL when DIGEST_TEST_PG is set."""
    copy_and_check(runner, tmp_path, f"sqlite:///{tmp_path / 'src.db'}", db.url, db)


def test_migrate_db_refuses_itself_and_bad_urls(runner, tmp_path):
    src = f"sqlite:///{tmp_path / 'src.db'}"
    same = runner.invoke(main, ["--db", src, "migrate-db", "--to", src])
    assert same.exit_code == 1 and same.output == "Error: --to: the target is the database being copied\n"
    bad = runner.invoke(main, ["--db", src, "migrate-db", "--to", "nonsense"])
    assert bad.exit_code == 1 and "not a database URL" in bad.output


def test_claim_keys_and_repro_fields_are_added_to_an_older_database(db):
    engine = store.open_engine(db.url)
    migrations.migrate(engine, upto=6)
    with engine.begin() as conn:  # the schema as it was before stable claim keys and repro fields
        if db.dialect == "sqlite":
            conn.exec_driver_sql("DROP INDEX IF EXISTS ix_claim_key")
        for table, column in [("claim", "key"), ("claim", "vanished"), ("reprohook", "script"), ("reprorun", "source")]:
            conn.exec_driver_sql(f'ALTER TABLE {table} DROP COLUMN "{column}"')
    store.init_db(engine)
    with Session(engine) as s:
        s.add(Item(key="k", source="blog", title="A 3x speedup", published=datetime(2026, 1, 5)))
        s.commit()
        s.add(Claim(item_id=1, value=3.0, unit="x", kind="speedup", text="A 3x speedup", key="k|title|x|3|0"))
        s.commit()
    assert db.rows("SELECT key, vanished FROM claim") == [("k|title|x|3|0", False)]
    from sqlalchemy import inspect

    assert {"source", "run_dir"} <= {c["name"] for c in inspect(engine).get_columns("reprorun")}
    assert "script" in {c["name"] for c in inspect(engine).get_columns("reprohook")}
    engine.dispose()


def test_entry_keys_move_to_their_source_and_ingest_finds_the_moved_rows(db, tmp_path, httpserver):
    """A database from before keys were per source: feed keys (and the claim keys built on them) get their
    source in front, arXiv keys stay global, and the next ingest of the same feed updates nothing."""
    from digest.config import load_config
    from digest.ingest import ingest
    from tests.conftest import FIXTURES

    before = [n for n, _ in migrations.MIGRATIONS].index("m013_hardening_entry_keys_per_source")
    cfg = write_config(tmp_path, f"""
        [[source]]
        name = "blog"
        kind = "rss"
        url = "{httpserver.url_for("/feed.xml")}"
        allow_private = true
        """)  # fmt: skip
    httpserver.expect_request("/feed.xml").respond_with_data((FIXTURES / "feed.xml").read_bytes())
    engine = store.open_engine(db.url)
    migrations.migrate(engine, upto=before)
    # What the old code stored for this feed (keys without their source), then its claims.
    from digest.parse import parse_feed

    entries = parse_feed((FIXTURES / "feed.xml").read_bytes(), {}, httpserver.url_for("/feed.xml"), 500).entries
    with store.session(engine) as s:
        for e in entries:  # the old upsert wrote entry.key as it came
            s.add(Item(key=e.key, source="blog", title=e.title, summary=e.summary, url=e.url,
                       published=e.published, content_hash=e.content_hash))  # fmt: skip
        s.add(Item(key="arxiv:2601.00001", kind="paper", source="arxiv-a", title="P", arxiv_id="2601.00001",
                   published=datetime(2026, 1, 1)))  # fmt: skip
        s.commit()
        post = s.exec(store.select(Item).where(Item.key == entries[0].key)).one()
        s.add(Claim(item_id=post.id, value=15, unit="x", text="15x", key=f"{entries[0].key}|title|x|15|1"))
        paper = s.exec(store.select(Item).where(Item.key == "arxiv:2601.00001")).one()
        s.add(Claim(item_id=paper.id, value=2, unit="x", text="2x", key="arxiv:2601.00001|summary|x|2|1"))
        s.commit()
    store.init_db(engine)
    keys = sorted(r[0] for r in db.rows("SELECT key FROM item"))
    assert keys == sorted(["arxiv:2601.00001", *(f"blog|{e.key}" for e in entries)])
    claim_keys = sorted(r[0] for r in db.rows("SELECT key FROM claim"))
    assert claim_keys == ["arxiv:2601.00001|summary|x|2|1", f"blog|{entries[0].key}|title|x|15|1"]
    reports = ingest(engine, load_config(cfg))
    assert [(r.new, r.updated) for r in reports] == [(0, 0)]  # the moved rows are found: no second copy
    assert db.one("SELECT count(*) FROM item") == len(entries) + 1
    engine.dispose()
