"""Library rows in the database: save imported records matched to stored findings, list and remove them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import select

from digest.errors import DigestError
from digest.library import Record, arxiv_from, normal_doi, normal_title
from digest.models import Item, LibraryEntry, utcnow
from digest.store import row_id, session


@dataclass
class ImportReport:
    added: int = 0
    already: int = 0
    matched: int = 0  # entries that are stored findings
    own_text: int = 0  # entries kept with their own title/abstract (embedded)
    no_text: int = 0  # entries known only by id: they count once their paper is stored


def _finding_index(s) -> tuple[dict[str, int], dict[str, int]]:
    """arXiv id -> item id and normalised title -> item id over stored findings (not blog coverage)."""
    by_arxiv: dict[str, int] = {}
    by_title: dict[str, int] = {}
    rows = s.exec(select(Item.id, Item.arxiv_id, Item.title).where(Item.covers_item_id.is_(None))).all()
    for item_id, arxiv_id, title in rows:
        if arxiv_id:
            by_arxiv.setdefault(arxiv_id, item_id)
        t = normal_title(title)
        if len(t) >= 12:  # short titles ("Introduction") would match by accident
            by_title.setdefault(t, item_id)
    return by_arxiv, by_title


def match(record: Record, by_arxiv: dict[str, int], by_title: dict[str, int]) -> int | None:
    """The stored finding a record is: by arXiv id (also from an arXiv DOI), else by normalised title."""
    if record.arxiv_id and record.arxiv_id in by_arxiv:
        return by_arxiv[record.arxiv_id]
    return by_title.get(normal_title(record.title)) if record.title else None


def save_records(
    engine: Engine,
    records: Sequence[Record],
    origin: str,
    embed: Callable[[list[str]], object] | None = None,
    model: str = "",
) -> ImportReport:
    """Insert records not yet in the library (by key), matched to findings; unmatched ones with text are embedded
    with `embed` (called once, only when there is something to embed)."""
    report = ImportReport()
    with session(engine) as s:
        have = set(s.exec(select(LibraryEntry.key)).all())
        by_arxiv, by_title = _finding_index(s)
        rows: list[LibraryEntry] = []
        for r in records:
            if r.key in have:
                report.already += 1
                continue
            have.add(r.key)
            item_id = match(r, by_arxiv, by_title)
            where = f"{origin}:{r.origin}" if r.origin and origin else (origin or r.origin)
            rows.append(
                LibraryEntry(
                    key=r.key,
                    title=r.title,
                    abstract=r.abstract,
                    arxiv_id=r.arxiv_id,
                    doi=r.doi,
                    authors=json.dumps(list(r.authors), ensure_ascii=False),
                    year=r.year,
                    origin=where[:500],
                    item_id=item_id,
                    added_at=utcnow(),
                )
            )
        todo = [row for row in rows if row.item_id is None and row.title]
        if todo and embed is not None:
            import numpy as np

            vecs = np.asarray(embed([f"{row.title}\n{row.abstract}".strip() for row in todo]), dtype=np.float32)
            for row, vec in zip(todo, vecs, strict=True):
                row.vector, row.model = vec.tobytes(), model
        for row in rows:
            report.added += 1
            if row.item_id is not None:
                report.matched += 1
            elif row.vector is not None:
                report.own_text += 1
            else:
                report.no_text += 1
            s.add(row)
        s.commit()
    return report


def entries(engine: Engine) -> list[LibraryEntry]:
    with session(engine) as s:
        return list(s.exec(select(LibraryEntry).order_by(LibraryEntry.id)).all())


def entries_with_findings(engine: Engine) -> list[tuple[LibraryEntry, Item | None]]:
    """Each entry with the stored finding it is: matched at import, or ingested since (by arXiv id), as
    `recommend` counts it."""
    rows = entries(engine)
    with session(engine) as s:
        by_id = {i.id: i for i in s.exec(select(Item).where(Item.id.in_([r.item_id for r in rows if r.item_id])))}
        wanted = [r.arxiv_id for r in rows if not r.item_id and r.arxiv_id]
        by_arxiv = (
            {
                i.arxiv_id: i
                for i in s.exec(select(Item).where(Item.arxiv_id.in_(wanted), Item.covers_item_id.is_(None)))
            }
            if wanted
            else {}
        )
    return [(r, by_id.get(r.item_id) if r.item_id else by_arxiv.get(r.arxiv_id or "")) for r in rows]


def find(engine: Engine, ref: str) -> LibraryEntry | None:
    """An entry by its id, key, arXiv id/URL or DOI."""
    with session(engine) as s:
        if row_id(ref) is not None:
            row = s.get(LibraryEntry, row_id(ref))
            if row:
                return row
        keys = [ref]
        if arxiv_id := arxiv_from(ref):
            keys.append(f"arxiv:{arxiv_id}")
        if doi := normal_doi(ref):
            keys.append(f"doi:{doi}")
        return s.exec(select(LibraryEntry).where(LibraryEntry.key.in_(keys))).first()


def remove(engine: Engine, ref: str) -> LibraryEntry:
    row = find(engine, ref)
    if row is None:
        raise DigestError(f"{ref!r} is not in the library (see `digest library list`)")
    with session(engine) as s:
        s.delete(s.get(LibraryEntry, row.id))
        s.commit()
    return row
