"""SQLModel tables: the one schema every stage reads and writes through digest.store (times are naive UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import NaiveDatetime
from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Source(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    kind: str
    url: str = ""
    query: str = ""
    enabled: bool = True
    disabled_reason: str = ""


class Item(SQLModel, table=True):
    """A paper or a post; `key` is stable across fetches (arxiv:ID, else guid, else link, else hash)."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, unique=True)
    kind: str = "post"  # paper | post
    source: str = Field(index=True)
    arxiv_id: str | None = Field(default=None, index=True)
    arxiv_version: int | None = None
    versions: str = "[]"  # JSON list of {"version", "updated"}
    title: str
    authors: str = "[]"  # JSON list of names
    summary: str = ""  # plain text
    summary_html: str = ""  # sanitised HTML
    url: str = ""
    pdf_url: str = ""
    published: NaiveDatetime = Field(index=True)
    updated: NaiveDatetime | None = None
    blog_tags: str = "[]"  # JSON list: the source's own tags, evidence for tagging
    code_urls: str = "[]"  # JSON list of GitHub / GitLab / Hugging Face links
    doi: str | None = None  # the published version's DOI, when arXiv lists one (<arxiv:doi>)
    covers_item_id: int | None = Field(default=None, foreign_key="item.id", index=True)
    content_hash: str = ""
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class Embedding(SQLModel, table=True):
    item_id: int = Field(primary_key=True, foreign_key="item.id")
    model: str = Field(primary_key=True)
    content_hash: str
    dim: int
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Topic(SQLModel, table=True):
    slug: str = Field(primary_key=True)
    name: str
    description: str = ""
    keywords: str = "[]"


class ItemTopic(SQLModel, table=True):
    item_id: int = Field(primary_key=True, foreign_key="item.id")
    topic_slug: str = Field(primary_key=True, foreign_key="topic.slug", index=True)
    score: float


class Claim(SQLModel, table=True):
    __table_args__ = (Index("ix_claim_item", "item_id"),)

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="item.id")
    value: float
    value_hi: float | None = None
    unit: str = ""
    kind: str = ""
    direction: str = ""
    qualifier: str = ""
    subject: str = ""
    context: str = ""
    baseline: float | None = None
    text: str
    start: int = 0
    end: int = 0
    field: str = "summary"  # title | summary
    # Stable across re-extraction (item key | field | unit | value | n-th occurrence): hooks point at claim ids.
    key: str | None = Field(default=None, index=True, unique=True)
    vanished: bool = False  # no longer in the text, kept only because a hook or run points at it


class FetchState(SQLModel, table=True):
    source: str = Field(primary_key=True)
    url: str = ""
    etag: str = ""
    last_modified: str = ""
    last_status: int | None = None
    last_fetch_at: NaiveDatetime | None = None
    last_error: str = ""


class SourceRun(SQLModel, table=True):
    """One row per source per ingest: what `digest status` reports."""

    __table_args__ = (UniqueConstraint("run_id", "source"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True)
    source: str = Field(index=True)
    started_at: NaiveDatetime = Field(default_factory=utcnow)
    status: str = "ok"  # ok | not-modified | broken | incomplete | disabled
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str = ""
    duration_s: float = 0.0


class ReproHook(SQLModel, table=True):
    """A user-registered script that re-measures one claim (issue #6 owns the runner)."""

    id: int | None = Field(default=None, primary_key=True)
    claim_id: int | None = Field(default=None, foreign_key="claim.id", index=True)  # None: a standalone benchmark
    name: str = ""  # unique label (e.g. from repro/hooks.toml), usable instead of the id
    command: str  # run as an argv list (shlex-split), never through a shell built from feed text
    workdir: str = ""
    tolerance: float = 0.05
    tolerance_kind: str = "relative"  # relative | absolute | at-least (a floor)
    requires: str = ""  # "" or e.g. "cuda"
    timeout_s: float = 600.0
    description: str = ""
    created_at: NaiveDatetime = Field(default_factory=utcnow)
    script: str = ""  # path of the script under repro/, relative to workdir
    claimed: float | None = None  # the value to compare against when the hook has no claim
    claimed_hi: float | None = None
    unit: str = ""
    env: str = ""  # environment variables (space separated) the hook sees besides the allow-list


class ReproRun(SQLModel, table=True):
    """One execution of a hook; the latest per claim is the verdict shown everywhere."""

    id: int | None = Field(default=None, primary_key=True)
    hook_id: int = Field(foreign_key="reprohook.id", index=True)
    claim_id: int | None = Field(default=None, foreign_key="claim.id", index=True)
    started_at: NaiveDatetime = Field(default_factory=utcnow)
    duration_s: float = 0.0
    verdict: str  # reproduced | diverged | failed | skipped
    measured: float | None = None
    claimed: float | None = None
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    environment: str = "{}"  # JSON: python, platform, hardware
    note: str = ""
    run_dir: str = ""  # the run's own working folder (full stdout/stderr are there)
    source: str = "run"  # run | record (measured elsewhere and recorded by hand)


class HostHold(SQLModel, table=True):
    """A host that answered 429/503 with Retry-After: not asked again before `until`, across runs too."""

    host: str = Field(primary_key=True)
    until: NaiveDatetime
    reason: str = ""


class IngestCursor(SQLModel, table=True):
    """Where the last complete arXiv run of a source stopped: the newest `updated` it stored."""

    source: str = Field(primary_key=True)
    cursor: NaiveDatetime | None = None
    run_id: str = ""
    saved_at: NaiveDatetime = Field(default_factory=utcnow)


class Subscriber(SQLModel, table=True):
    """A newsletter recipient; `token` makes their unsubscribe links their own."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(index=True, unique=True)
    token: str
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class SendLedger(SQLModel, table=True):
    """One row per (issue, recipient): committed as `sending` with its Message-ID before the SMTP transaction,
    turned `sent` after the server accepted it. A `sending` row left by a crash is resent with that Message-ID."""

    __table_args__ = (UniqueConstraint("issue", "email"),)
    id: int | None = Field(default=None, primary_key=True)
    issue: str = Field(index=True)  # ISO week, e.g. 2026-W48
    email: str
    message_id: str = ""
    status: str = "sent"  # sending | sent
    sent_at: NaiveDatetime = Field(default_factory=utcnow)


class TopicVector(SQLModel, table=True):
    """Cached embedding of one topic prototype text, so a taxonomy change re-embeds only what changed."""

    model: str = Field(primary_key=True)
    text_hash: str = Field(primary_key=True)
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class SuggestedTopic(SQLModel, table=True):
    """A cluster of items that fit no topic well: a candidate for the taxonomy (`digest topics suggest`)."""

    id: str = Field(primary_key=True)  # "c" + hash of the sorted member item keys: stable on unchanged data
    label: str  # the top distinctive terms, joined
    terms: str = "[]"  # JSON list of c-TF-IDF terms, most distinctive first
    size: int = 0
    members: str = "[]"  # JSON list of item keys, sorted
    titles: str = "[]"  # JSON list of up to 5 member titles (most central first)
    model: str = ""
    created_at: NaiveDatetime = Field(default_factory=utcnow)


class SourceMove(SQLModel, table=True):
    """Where a source's feed moved for good (HTTP 301/308), and from which config URL: once the URL in the
    config is edited the move no longer applies, so the config wins."""

    source: str = Field(primary_key=True)
    config_url: str
    url: str
    moved_at: NaiveDatetime = Field(default_factory=utcnow)


class LibraryEntry(SQLModel, table=True):
    """One paper of the reader's own library (`digest library import/add`): a stored finding when one matches,
    else its own title and abstract, embedded so it still shapes the profile."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, unique=True)  # arxiv:ID | doi:DOI | title:normalised title
    title: str = ""
    abstract: str = ""
    arxiv_id: str | None = Field(default=None, index=True)
    doi: str | None = None
    authors: str = "[]"  # JSON list of names
    year: int | None = None
    origin: str = ""  # the file and citation key (or the argument) it came from
    item_id: int | None = Field(default=None, foreign_key="item.id", index=True)  # the matched finding
    model: str = ""  # the embedding model of `vector`
    vector: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    added_at: NaiveDatetime = Field(default_factory=utcnow)
