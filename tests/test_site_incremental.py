"""Incremental site builds: only changed findings are loaded, and the result equals a full build byte for byte."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, update

from digest import pipeline, render, store, write
from digest.config import load_config
from digest.models import Claim, Item, ItemTopic, ReproHook, ReproRun, Topic
from tests.conftest import write_config

NOW = datetime(2026, 11, 25, 12)
SLUGS = ("quantization", *(f"topic-{n}" for n in range(39)))


def add_items(engine, first: int, count: int, when: datetime) -> None:
    with store.session(engine) as s:
        for n in range(first, first + count):
            arxiv = n % 3 != 0
            s.add(
                Item(
                    id=n,
                    key=f"k{n}",
                    kind="paper" if arxiv else "post",
                    source="arxiv-test" if arxiv else "blog-test",
                    arxiv_id=f"2611.{n:05d}" if arxiv else None,
                    arxiv_version=1 if arxiv else None,
                    title=f"Finding {n} on <speculative> decoding & caches",
                    authors=json.dumps([f"Author {n}", "Ada Lovelace"]),
                    summary=f"We propose method {n}. It achieves a {n % 7 + 2}x speedup on Llama. Code is out.",
                    url=f"https://arxiv.org/abs/2611.{n:05d}" if arxiv else f"https://blog.test/p/{n}",
                    pdf_url=f"https://arxiv.org/pdf/2611.{n:05d}" if arxiv else "",
                    published=when - timedelta(days=n % 140, hours=n % 24),
                    content_hash=f"h{n}",
                )
            )
        s.flush()
        for n in range(first, first + count):
            for k in range(1 + n % 2):
                s.add(ItemTopic(item_id=n, topic_slug=SLUGS[(n + k) % len(SLUGS)], score=round(0.9 - k / 10, 2)))
            s.add(
                Claim(item_id=n, value=n % 7 + 2, unit="x", kind="speedup", text=f"a {n % 7 + 2}x speedup", key=f"c{n}")
            )
        s.commit()


def files(root: Path) -> dict[str, bytes]:
    """Every file of a built site, the manifest included; not the fragment cache (a SQLite file's bytes vary)."""
    paths = [p for p in sorted(root.rglob("*")) if p.is_file() and p.name != write.CACHE]
    return {str(p.relative_to(root)): p.read_bytes() for p in paths}


def seeded(tmp_path: Path, db, count: int):
    """(config, engine) with the topics and `count` findings."""
    config = load_config(write_config(tmp_path, ""))
    engine = store.open_engine(db.url)
    store.init_db(engine)
    with store.session(engine) as s:
        s.add_all([Topic(slug=slug, name=slug.replace("-", " ").title(), keywords="[]") for slug in SLUGS])
        s.commit()
    add_items(engine, 1, count, NOW)
    return config, engine


def test_incremental_rebuild_equals_a_full_build(tmp_path, db, monkeypatch):
    config, engine = seeded(tmp_path, db, 200)
    out = tmp_path / "site"
    pipeline.build_site(engine, config, out, search=False)
    first = files(out)
    untouched = out / next(p for p in first if p.startswith("items/3-"))
    stamp = untouched.stat().st_mtime_ns

    # New findings, a blog post covering one paper, a reproduction verdict, a deleted finding, a retitled one.
    add_items(engine, 201, 3, NOW + timedelta(days=1))
    with store.session(engine) as s:
        s.add(Item(id=600, key="post", kind="post", source="blog-test", title="Coverage of 2", url="https://b.test/c",
                   published=NOW, covers_item_id=2, content_hash="p600"))  # fmt: skip
        hook = ReproHook(command="true", name="h")
        s.add(hook)
        s.flush()
        claim = s.exec(store.select(Claim).where(Claim.item_id == 5)).one()
        s.add(ReproRun(hook_id=hook.id, claim_id=claim.id, verdict="reproduced", measured=2.0))
        s.exec(delete(ItemTopic).where(ItemTopic.item_id == 7))
        s.exec(delete(Claim).where(Claim.item_id == 7))
        s.exec(delete(Item).where(Item.id == 7))
        s.exec(update(Item).where(Item.id == 9).values(title="Finding 9, retitled", content_hash="h9b"))
        s.commit()
    loaded = build_counting_loads(engine, config, out, monkeypatch)
    assert loaded and all(ids is not None for ids in loaded)  # never the whole table on a rebuild
    assert sum(len(ids) for ids in loaded) < 100  # only changed findings and members of changed list pages
    assert untouched.stat().st_mtime_ns == stamp

    fresh = tmp_path / "fresh"
    pipeline.build_site(engine, config, fresh, search=False)
    assert files(out) == files(fresh)
    site = files(out)
    assert not any(p.startswith("items/7-") for p in site)
    listing = b"".join(data for p, data in site.items() if not p.startswith("items/"))
    assert b"items/7-" not in listing and b"Finding 7 " not in listing
    assert b"Finding 9, retitled" in site["feed.json"] or b"Finding 9, retitled" in listing
    item2 = next(data for p, data in site.items() if p.startswith("items/2-"))
    assert b"Coverage of 2" in item2
    claims = json.loads(site["claims.json"])
    assert {c["verdict"] for c in claims if c["item_id"] == 5} == {"reproduced"}
    assert len(claims) == 202 and 7 not in {c["item_id"] for c in claims}

    # A deleted topic takes its pages and links with it (a taxonomy change re-renders everything).
    with store.session(engine) as s:
        s.exec(delete(ItemTopic).where(ItemTopic.topic_slug == "quantization"))
        s.exec(delete(Topic).where(Topic.slug == "quantization"))
        s.commit()
    pipeline.build_site(engine, config, out, search=False)
    site = files(out)
    assert "tags/quantization.html" not in site and "tags/quantization.atom" not in site
    assert not any(b"tags/quantization" in data for data in site.values())
    fresh2 = tmp_path / "fresh2"
    pipeline.build_site(engine, config, fresh2, search=False)
    assert site == files(fresh2)


def build_counting_loads(engine, config, out: Path, monkeypatch) -> list:
    """Build, recording the ids of every findings load (None: the whole table)."""
    loaded: list = []
    real = store.site_views

    def counting(engine_, ids=None):
        loaded.append(ids)
        return real(engine_, ids)

    monkeypatch.setattr(store, "site_views", counting)
    pipeline.build_site(engine, config, out, search=False)
    monkeypatch.undo()
    return loaded


def test_a_changed_site_setting_rebuilds_every_page(tmp_path, db):
    config, engine = seeded(tmp_path, db, 5)
    out = tmp_path / "site"
    pipeline.build_site(engine, config, out, search=False)
    manifest = write.read_manifest(write.state_dir(out, config.workspace))
    assert manifest["items"] and all(len(v) == 3 for v in manifest["items"].values())
    config = dataclasses.replace(config, site=dataclasses.replace(config.site, title="Renamed Digest"))
    _out, written = pipeline.build_site(engine, config, out, search=False)
    assert written >= sum(p.endswith((".html", ".atom")) for p in manifest["pages"])  # JSON files hold no title
    assert all(b"Renamed Digest" in (out / p).read_bytes() for p in manifest["pages"] if p.endswith(".html"))


def test_a_site_from_the_first_manifest_format_is_rebuilt_and_stale_pages_removed(tmp_path, db):
    config, engine = seeded(tmp_path, db, 3)
    out = tmp_path / "site"
    (out / "items").mkdir(parents=True)
    (out / "items" / "99-gone.html").write_text("old")
    (out / ".digest-build.json").write_text(json.dumps({"items/99-gone.html": "k", "index.html": "k"}))
    pipeline.build_site(engine, config, out, search=False)
    assert not (out / "items" / "99-gone.html").exists() and (out / "index.html").exists()
    assert write.read_manifest(write.state_dir(out, config.workspace))["version"] == write.MANIFEST_VERSION
    assert not (out / ".digest-build.json").exists()  # moved out of the published folder


def test_the_fragment_cache_serves_unchanged_findings_and_never_a_stale_one(tmp_path, db, monkeypatch):
    config, engine = seeded(tmp_path, db, 120)
    out = tmp_path / "site"
    pipeline.build_site(engine, config, out, search=False)
    cards: list[int] = []
    real_card = render.finding_card

    def counting(f, root):
        cards.append(f.item.id)
        return real_card(f, root)

    monkeypatch.setattr(render, "finding_card", counting)

    def same_as_fresh(name: str) -> None:
        fresh = tmp_path / name
        pipeline.build_site(engine, config, fresh, search=False)
        assert files(out) == files(fresh)

    # Two new findings: topic, week and home pages re-render with every other card from the cache.
    add_items(engine, 121, 2, NOW + timedelta(days=1))
    pipeline.build_site(engine, config, out, search=False)
    assert sorted(cards) == [121, 122]
    same_as_fresh("fresh-add")

    # A retitled finding's cached card and feed entry no longer match its signature.
    cards.clear()
    with store.session(engine) as s:
        s.exec(update(Item).where(Item.id == 4).values(title="Finding 4, retitled", content_hash="h4b"))
        s.commit()
    pipeline.build_site(engine, config, out, search=False)
    assert cards == [4]
    assert b"Finding 4, retitled" in (out / "tags" / f"{SLUGS[4]}.html").read_bytes()
    same_as_fresh("fresh-retitle")

    # A renamed topic changes every card (its tag links): nothing cached is used.
    cards.clear()
    with store.session(engine) as s:
        s.exec(update(Topic).where(Topic.slug == "topic-1").values(name="Renamed Topic"))
        s.commit()
    pipeline.build_site(engine, config, out, search=False)
    assert len(cards) == 122
    same_as_fresh("fresh-rename")

    # A deleted finding's fragments leave the cache; a corrupt cache file is rebuilt, never trusted.
    with store.session(engine) as s:
        s.exec(delete(ItemTopic).where(ItemTopic.item_id == 6))
        s.exec(delete(Claim).where(Claim.item_id == 6))
        s.exec(delete(Item).where(Item.id == 6))
        s.commit()
    pipeline.build_site(engine, config, out, search=False)
    state = write.state_dir(out, config.workspace)
    cache = write.FragmentCache(state)
    assert cache.get([6]) == [] and {row[1] for row in cache.get([5])} >= {"card"}
    (state / write.CACHE).write_bytes(b"not a database" * 100)
    add_items(engine, 123, 1, NOW + timedelta(days=2))
    pipeline.build_site(engine, config, out, search=False)
    same_as_fresh("fresh-corrupt")


def test_a_build_in_forked_workers_equals_one_in_a_single_process(tmp_path, db, monkeypatch):
    """Big sites render in forked workers (one per core, item pages with their findings' fragments first,
    then list pages): the files and the fragment cache are those of a build in one process."""
    config, engine = seeded(tmp_path, db, 150)
    single = tmp_path / "single"
    pipeline.build_site(engine, config, single, search=False)

    marks = tmp_path / "workers"
    marks.mkdir()
    real = write._render_and_write

    def render_and_write(*args):
        (marks / str(os.getpid())).touch()
        return real(*args)

    cards = tmp_path / "cards"
    cards.mkdir()
    real_card = render.finding_card

    def finding_card(f, root):
        (cards / f"{f.item.id}-{os.getpid()}").touch()
        return real_card(f, root)

    monkeypatch.setattr(write, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(write.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(write, "_render_and_write", render_and_write)
    monkeypatch.setattr(render, "finding_card", finding_card)
    parallel = tmp_path / "parallel"
    pipeline.build_site(engine, config, parallel, search=False)
    workers = {int(p.name) for p in marks.iterdir()}
    assert workers and os.getpid() not in workers
    # Each finding's card is rendered once, in the worker that renders its page (not once per worker).
    made = [p.name.split("-")[0] for p in cards.iterdir()]
    assert len(made) == len(set(made)) == 150
    assert files(parallel) == files(single)
    single_state, parallel_state = (write.state_dir(d, config.workspace) for d in (single, parallel))
    ids = sorted(int(i) for i in write.read_manifest(single_state)["items"])
    assert sorted(write.FragmentCache(parallel_state).get(ids)) == sorted(write.FragmentCache(single_state).get(ids))


def test_build_state_lives_in_the_workspace_and_an_old_sites_state_moves_there(tmp_path, db):
    """Manifest and fragment cache are not published: they live in <workspace>/.build/, and a site folder
    built by an older Digest (state inside it) hands its state over, so nothing is rebuilt for it."""
    config, engine = seeded(tmp_path, db, 5)
    out = tmp_path / "site"
    pipeline.build_site(engine, config, out, search=False)
    state = write.state_dir(out, config.workspace)
    assert state.is_relative_to(config.workspace / ".build")
    assert {p.name for p in state.iterdir()} >= set(write.STATE_FILES)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    # A site from before: its state inside the published folder, none in the workspace.
    for name in write.STATE_FILES:
        os.replace(state / name, out / name)
    manifest = (out / write.MANIFEST).read_bytes()
    assert pipeline.build_site(engine, config, out, search=False)[1] == 0  # the moved manifest is used
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert (state / write.MANIFEST).read_bytes() == manifest
    # Both present (an old Digest ran once more): the copy inside the site is dropped, not published.
    (out / write.MANIFEST).write_bytes(b"{}")
    (out / write.CACHE).write_bytes(b"old")
    assert pipeline.build_site(engine, config, out, search=False)[1] == 0
    assert not (out / write.MANIFEST).exists() and not (out / write.CACHE).exists()
    # Two output folders keep two states.
    assert write.state_dir(tmp_path / "other" / "site", config.workspace) != state


def retitle(engine, word: str) -> None:
    """Every finding gets a new title, so a new page path (items/<id>-<slug>.html)."""
    with store.session(engine) as s:
        for item in s.exec(store.select(Item)).all():
            item.title = f"{word} take on finding {item.id}"
            item.content_hash = f"{word}{item.id}"
            s.add(item)
        s.commit()


def test_a_build_killed_mid_write_then_a_retitle_leaves_no_stale_page_and_no_temp_file(tmp_path, db):
    """A real `digest build` (its process group, forked workers included) SIGKILLed while it writes the
    retitled pages, before its manifest; then another retitle and a complete build. The pages the killed build
    wrote were in no manifest: deletion must come from what is on disk."""
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    config, engine = seeded(tmp_path, db, 1500)
    out = tmp_path / "site"
    pipeline.build_site(engine, config, out, search=False)
    state = write.state_dir(out, config.workspace)
    before = (state / write.MANIFEST).read_bytes()
    retitle(engine, "second")
    argv = [sys.executable, "-m", "digest", "--config", str(config.path), "--db", db.url, "build", "--no-search",
            "--out", str(out)]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while proc.poll() is None and not any("-second-" in n for n in os.listdir(out / "items")):
            pass
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.communicate()
    assert (state / write.MANIFEST).read_bytes() == before  # killed mid-write: the old manifest is still there
    assert any("-second-" in n for n in os.listdir(out / "items"))
    retitle(engine, "third")
    pipeline.build_site(engine, config, out, search=False)
    listed = set(write.read_manifest(state)["pages"])
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert on_disk - listed == set(), sorted(on_disk - listed)[:5]  # the build state is not in the site
    fresh = tmp_path / "fresh"
    pipeline.build_site(engine, config, fresh, search=False)
    assert files(out) == files(fresh)


def test_temp_files_a_kill_leaves_are_removed_and_a_users_own_files_kept(tmp_path, db):
    config, engine = seeded(tmp_path, db, 3)
    out = tmp_path / "site"
    pipeline.build_site(engine, config, out, search=False)
    state = write.state_dir(out, config.workspace)
    page = next(p for p in write.read_manifest(state)["pages"] if p.startswith("items/"))
    left = [write.temp_beside(state / write.MANIFEST), write.temp_beside(out / "index.html"),
            write.temp_beside(out / page), str(out / "items" / f".{page[6:]}.tmp4242")]  # fmt: skip
    (out / "CNAME").write_text("digest.example.org")  # the operator's own file at the top level
    retitle(engine, "new")
    pipeline.build_site(engine, config, out, search=False)
    assert not any(Path(p).exists() for p in left)
    assert (out / "CNAME").read_text() == "digest.example.org"
    # A page folder that is a link to somewhere else: pages are written through it, nothing there is deleted.
    elsewhere = tmp_path / "elsewhere"
    (out / "items").rename(elsewhere)
    (elsewhere / "precious.txt").write_text("keep")
    (out / "items").symlink_to(elsewhere)
    retitle(engine, "linked")
    pipeline.build_site(engine, config, out, search=False)
    assert (elsewhere / "precious.txt").read_text() == "keep"
