"""Numbered schema migrations (simonw/llm style): small functions, each applied once and recorded in a table.

Migration 1 is `create_all` of the SQLModel tables; later ones add what create_all cannot express (full-text
indexes, triggers) or change existing tables. Append new migrations at the end; never edit or reorder old ones.
Every migration must run on SQLite and on PostgreSQL. This module imports nothing heavy at import time so the
search fast path can check `LATEST` cheaply.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

TABLE = "digest_migrations"
MIGRATIONS: list[tuple[str, Callable]] = []


def migration(fn: Callable) -> Callable:
    """Register fn as the next numbered migration."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


@migration
def m001_create_tables(conn, dialect: str) -> None:
    from sqlmodel import SQLModel

    import digest.models  # noqa: F401  (registers the tables)

    SQLModel.metadata.create_all(conn)


@migration
def m002_full_text_search(conn, dialect: str) -> None:
    if dialect == "sqlite":
        for sql in (
            "CREATE VIRTUAL TABLE IF NOT EXISTS item_fts USING fts5(title, summary, content='item', "
            "content_rowid='id', tokenize='porter unicode61')",
            "CREATE TRIGGER IF NOT EXISTS item_fts_ai AFTER INSERT ON item BEGIN "
            "INSERT INTO item_fts(rowid, title, summary) VALUES (new.id, new.title, new.summary); END",
            "CREATE TRIGGER IF NOT EXISTS item_fts_ad AFTER DELETE ON item BEGIN "
            "INSERT INTO item_fts(item_fts, rowid, title, summary) VALUES ('delete', old.id, old.title, old.summary);"
            " END",
            "CREATE TRIGGER IF NOT EXISTS item_fts_au AFTER UPDATE OF title, summary ON item BEGIN "
            "INSERT INTO item_fts(item_fts, rowid, title, summary) VALUES ('delete', old.id, old.title, old.summary);"
            " INSERT INTO item_fts(rowid, title, summary) VALUES (new.id, new.title, new.summary); END",
            "INSERT INTO item_fts(item_fts) VALUES ('rebuild')",
        ):
            _exec(conn, sql)
    else:
        _exec(
            conn,
            "ALTER TABLE item ADD COLUMN IF NOT EXISTS search_tsv tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
            "setweight(to_tsvector('english', coalesce(summary, '')), 'B')) STORED",
        )
        _exec(conn, "CREATE INDEX IF NOT EXISTS ix_item_search_tsv ON item USING GIN (search_tsv)")


@migration
def m003_search_state(conn, dialect: str) -> None:
    """A revision counter bumped by triggers whenever vectors or findings change: the key of the vector cache."""
    _exec(conn, "CREATE TABLE IF NOT EXISTS search_state (key VARCHAR(64) PRIMARY KEY, value VARCHAR(64) NOT NULL)")
    _exec(conn, "DELETE FROM search_state")
    _exec(conn, f"INSERT INTO search_state (key, value) VALUES ('db_id', '{uuid.uuid4().hex}')")
    _exec(conn, "INSERT INTO search_state (key, value) VALUES ('vectors_rev', '0')")
    bump = "UPDATE search_state SET value = CAST(CAST(value AS INTEGER) + 1 AS VARCHAR(64)) WHERE key = 'vectors_rev'"
    events = {
        "embedding": ["INSERT", "DELETE", "UPDATE"],
        "item": ["INSERT", "DELETE", "UPDATE OF covers_item_id"],
    }
    if dialect == "sqlite":
        for table, kinds in events.items():
            for kind in kinds:
                name = f"{table}_rev_{kind.split()[0].lower()}"
                _exec(conn, f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {kind} ON {table} BEGIN {bump}; END")
    else:
        _exec(
            conn,
            "CREATE OR REPLACE FUNCTION digest_bump_vectors_rev() RETURNS trigger AS $$ BEGIN "
            f"{bump}; RETURN NULL; END $$ LANGUAGE plpgsql",
        )
        for table, kinds in events.items():
            name = f"{table}_rev"
            _exec(conn, f"DROP TRIGGER IF EXISTS {name} ON {table}")
            _exec(
                conn,
                f"CREATE TRIGGER {name} AFTER {' OR '.join(kinds)} ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION digest_bump_vectors_rev()",
            )


@migration
def m004_findings_by_date_index(conn, dialect: str) -> None:
    """Findings newest first straight from an index: tag and filter searches stop after LIMIT rows."""
    _exec(
        conn,
        "CREATE INDEX IF NOT EXISTS ix_item_findings_published ON item (published, id) WHERE covers_item_id IS NULL",
    )


@migration
def m005_coverage_index(conn, dialect: str) -> None:
    """Posts covering a paper, found by paper without reading the (all-NULL for papers) rest of the table."""
    _exec(
        conn,
        "CREATE INDEX IF NOT EXISTS ix_item_coverage ON item (covers_item_id, id) WHERE covers_item_id IS NOT NULL",
    )


@migration
def m006_tag_items_index(conn, dialect: str) -> None:
    """A tag's items straight from one covering index (tag filters, tag intersections)."""
    _exec(conn, "CREATE INDEX IF NOT EXISTS ix_itemtopic_slug_item ON itemtopic (topic_slug, item_id)")


@migration
def m007_claim_keys_and_repro_fields(conn, dialect: str) -> None:
    """Columns that came after the first schema: stable claim keys and the repro hook/run fields."""
    _add_columns(
        conn,
        {
            "claim": ["key", "vanished"],
            "reprohook": ["name", "script", "claimed", "claimed_hi", "unit"],
            "reprorun": ["run_dir", "source"],
        },
    )
    _exec(conn, "CREATE UNIQUE INDEX IF NOT EXISTS ix_claim_key ON claim (key)")


@migration
def m008_no_rev_bump_per_inserted_item(conn, dialect: str) -> None:
    """SQLite bumped vectors_rev once per inserted item row; a new item has no vector yet, so drop that trigger.

    The vector cache holds embeddings of findings: inserting an embedding, deleting an item and changing which
    paper a post covers still bump the revision. (PostgreSQL's triggers run once per statement and stay.)
    """
    if dialect == "sqlite":
        _exec(conn, "DROP TRIGGER IF EXISTS item_rev_insert")


@migration
def m009_library_entries(conn, dialect: str) -> None:
    """The reader's library (issue #16): a table of its own, so the search fast path upgrades old databases."""
    from sqlmodel import SQLModel

    import digest.models  # noqa: F401  (registers the tables)

    SQLModel.metadata.tables["libraryentry"].create(conn, checkfirst=True)


@migration
def m010_validators_item_doi(conn, dialect: str) -> None:
    """item.doi: a paper's DOI from the arXiv API, cited in its BibTeX entry."""
    _add_columns(conn, {"item": ["doi"]})


@migration
def m011_hardening_send_ledger_status(conn, dialect: str) -> None:
    """The send ledger records `sending` before the SMTP transaction and `sent` after; old rows were sent."""
    _add_columns(conn, {"sendledger": ["status"]})


@migration
def m012_hardening_hook_env(conn, dialect: str) -> None:
    """Hooks see an allow-listed environment plus the variables their owner names (`reprohook.env`)."""
    _add_columns(conn, {"reprohook": ["env"]})


@migration
def m013_hardening_entry_keys_per_source(conn, dialect: str) -> None:
    """Item keys other than arXiv ids become `<source>|<key>` (two feeds with guid `1` are two items); claim
    keys, which start with their item's key, follow. Rows that two feeds already collapsed into one keep the
    source that wrote them last."""
    _exec(conn, "UPDATE item SET key = source || '|' || key WHERE substr(key, 1, 6) <> 'arxiv:'")
    _exec(
        conn,
        "UPDATE claim SET key = (SELECT item.source || '|' || claim.key FROM item WHERE item.id = claim.item_id) "
        "WHERE key IS NOT NULL AND substr(key, 1, 6) <> 'arxiv:' "
        "AND EXISTS (SELECT 1 FROM item WHERE item.id = claim.item_id)",
    )


LATEST = len(MIGRATIONS)


def _add_columns(conn, wanted: dict[str, list[str]]) -> None:
    """ALTER TABLE ... ADD COLUMN for each model column the database lacks (nullable, with the model's default)."""
    from sqlalchemy import inspect
    from sqlmodel import SQLModel

    import digest.models  # noqa: F401  (registers the tables)

    inspector = inspect(conn)
    for table_name, columns in wanted.items():
        have = {c["name"] for c in inspector.get_columns(table_name)}
        table = SQLModel.metadata.tables[table_name]
        for name in columns:
            if name in have:
                continue
            column = table.c[name]
            ddl = f'ALTER TABLE {table_name} ADD COLUMN "{name}" {column.type.compile(dialect=conn.dialect)}'
            default = column.default.arg if column.default is not None else None
            if isinstance(default, bool):
                ddl += f" DEFAULT {'TRUE' if default else 'FALSE'}"
            elif isinstance(default, int | float):
                ddl += f" DEFAULT {default}"
            elif isinstance(default, str):
                ddl += " DEFAULT '" + default.replace("'", "''") + "'"
            _exec(conn, ddl)


def _exec(conn, sql: str) -> None:
    conn.exec_driver_sql(sql)


def applied(engine) -> list[int]:
    """Versions already recorded in the database (empty for a new or pre-migration database)."""
    from sqlalchemy import inspect

    with engine.connect() as conn:
        if not inspect(conn).has_table(TABLE):
            return []
        return [r[0] for r in conn.exec_driver_sql(f"SELECT version FROM {TABLE} ORDER BY version")]


def migrate(engine, upto: int | None = None) -> list[str]:
    """Apply pending migrations (each in its own transaction, recorded with it); returns the names applied."""
    from sqlalchemy import text

    from digest.models import utcnow

    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (version INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, "
            "applied_at VARCHAR(40) NOT NULL)"
        )
    done = set(applied(engine))
    names = []
    for version, (name, fn) in enumerate(MIGRATIONS[:upto], start=1):
        if version in done:
            continue
        with engine.begin() as conn:
            fn(conn, engine.dialect.name)
            conn.execute(
                text(f"INSERT INTO {TABLE} (version, name, applied_at) VALUES (:v, :n, :t)"),
                {"v": version, "n": name, "t": utcnow().isoformat()},
            )
        names.append(name)
    return names
