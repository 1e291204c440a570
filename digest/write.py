"""Side effects at the edge: atomic file writes confined to the output folder, unchanged files left alone."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from pathlib import Path

import orjson

from digest.errors import DigestError

# Build state, kept outside the folder a user publishes (see state_dir); sites built before kept them inside.
MANIFEST = ".digest-build.json"
CACHE = ".digest-cache.sqlite"  # rendered fragments of findings (cards, feed entries) by signature, beside the manifest
STATE_FILES = (MANIFEST, CACHE)
MANIFEST_VERSION = 2
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)  # never write through a link
PARALLEL_MIN_WORK = 4000  # pages + findings they list: below this, forking workers costs more than it saves


def write_bytes(path: Path, data: bytes) -> bool:
    """Write via a temp file and rename; returns False when the file already held these bytes."""
    path = Path(path)
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)
    if path.exists():  # a user's file (topics.toml) keeps its mode
        os.chmod(tmp, path.stat().st_mode & 0o7777)
    replace_with(path, data, tmp)
    return True


def temp_beside(path: Path) -> str:
    """A new empty temp file next to `path`, mode 0666 less the umask like any file Digest writes (mkstemp's 0600
    would leave site pages unreadable to the web server that serves them)."""
    while True:
        tmp = f"{path.parent}/.{path.name}.{os.urandom(6).hex()}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def replace_with(path: Path, data: bytes, tmp: str) -> None:
    """Write `data` to the temp path `tmp` beside `path`, then rename it over `path` (readers never see half a file)."""
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def confined(root: Path, rel: str) -> Path:
    """`root/rel`, refusing absolute paths and any `..` that would leave root (checked without touching disk)."""
    norm = posixpath.normpath(rel)
    if not rel or rel.startswith("/") or norm.startswith("..") or "\\" in rel or "\0" in rel:
        raise DigestError(f"refusing to write outside the output folder: {rel!r}")
    return root / norm


def _check(rel: str) -> None:
    """A relative path made only of plain names: what confined() allows, decided without building paths."""
    if not rel or rel[0] == "/" or "\\" in rel or "\0" in rel or ".." in rel or "//" in rel or "/./" in rel:
        raise DigestError(f"refusing to write outside the output folder: {rel!r}")


def write_tree(out: Path, pages: dict[str, bytes]) -> int:
    """Write every page under `out`; a path that would escape `out` is refused. Returns files written."""
    root = Path(out).resolve()
    return sum(write_bytes(confined(root, rel), data) for rel, data in pages.items())


class _Writer:
    """Many files fast: a new file is one open and write; an existing one is compared, then replaced atomically."""

    def __init__(self, present: set[str]):
        self.present = present  # relative paths that existed when the build started
        self.suffix = f".tmp{os.getpid()}"

    def write(self, root: Path, rel: str, data: bytes) -> bool:
        try:
            return self._write(root, rel, data)
        except OSError as exc:  # a full disk: no half-written new page stays; the error names the file
            if rel not in self.present:
                Path(root, rel).unlink(missing_ok=True)
            if exc.filename is None and exc.errno is not None:
                raise OSError(exc.errno, exc.strerror, f"{root}/{rel}") from None
            raise

    def _write(self, root: Path, rel: str, data: bytes) -> bool:
        path = f"{root}/{rel}"
        if rel not in self.present:
            # A new file: written in place (no reader can depend on it yet, and the manifest, saved
            # last, makes an interrupted build render it again). Existing files are replaced atomically.
            fd = os.open(path, _NEW_FILE, 0o666)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            return True
        try:
            with open(path, "rb") as fh:  # another size: changed, without reading it (claims.json is MBs)
                if os.fstat(fh.fileno()).st_size == len(data) and fh.read() == data:
                    return False
        except FileNotFoundError:
            pass
        parent, name = path.rsplit("/", 1)
        replace_with(Path(path), data, f"{parent}/.{name}{self.suffix}")
        return True


def _render_and_write(root: Path, pages: dict, paths: list[str], present: set[str]) -> tuple[int, int]:
    writer = _Writer(present)
    written = 0
    for rel in paths:
        written += writer.write(root, rel, pages[rel].render())
    return len(paths), written


class FragmentCache:
    """Cards and feed entries of findings rendered by earlier builds, in a SQLite file beside the manifest.

    A row holds one fragment of one finding with the finding's signature (key) when it was rendered: it
    serves a build only while that key equals the finding's current one, so a stale row is never used;
    rows of deleted findings are dropped. Any SQLite error (a corrupt or locked file) makes the cache
    empty for that build and the file is started again: it only ever saves work."""

    VERSION = 2
    KINDS = ("card", "entry")  # row id = finding id * 2 + kind's index: integer keys, SQLite's fastest table

    def __init__(self, root: Path):
        self.path = Path(root) / CACHE

    def _connect(self):
        import sqlite3

        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA synchronous=OFF")  # a cache: losing the last write to a power cut costs only time
        if db.execute("PRAGMA user_version").fetchone()[0] != self.VERSION:
            db.execute("DROP TABLE IF EXISTS fragment")
            db.execute("CREATE TABLE fragment (slot INTEGER PRIMARY KEY, key TEXT NOT NULL, body TEXT NOT NULL)")
            db.execute(f"PRAGMA user_version={self.VERSION}")
        return db

    def get(self, ids: list[int]) -> list[tuple[int, str, str, str]]:
        """Rows (id, kind, key, body) of these findings; [] when there is no readable cache."""
        import sqlite3

        if not ids or not self.path.exists():
            return []
        kinds = self.KINDS
        slots = [i * 2 + k for i in ids for k in (0, 1)]
        rows: list = []
        try:
            db = self._connect()
            try:
                for n in range(0, len(slots), 900):
                    chunk = slots[n : n + 900]
                    marks = ",".join("?" * len(chunk))
                    for slot, key, body in db.execute(
                        f"SELECT slot, key, body FROM fragment WHERE slot IN ({marks})", chunk
                    ):
                        rows.append((slot >> 1, kinds[slot & 1], key, body))
            finally:
                db.close()
        except sqlite3.Error:
            return []
        return rows

    def update(self, rows: dict[tuple[int, str], tuple[str, str]], drop: set[int]) -> None:
        """Store new fragments ((id, kind) -> (key, body)) and forget deleted findings, in one transaction."""
        import sqlite3

        if not rows and not drop:
            return
        kind_of = {k: n for n, k in enumerate(self.KINDS)}
        try:
            db = self._connect()
            try:
                db.execute("BEGIN")
                db.executemany("DELETE FROM fragment WHERE slot IN (?, ?)", [(i * 2, i * 2 + 1) for i in drop])
                db.executemany(
                    "INSERT OR REPLACE INTO fragment VALUES (?, ?, ?)",
                    sorted((i * 2 + kind_of[kind], key, body) for (i, kind), (key, body) in rows.items()),
                )
                db.execute("COMMIT")
            finally:
                db.close()
        except sqlite3.Error:
            self.path.unlink(missing_ok=True)  # unreadable or unwritable: the next build starts it again


def state_dir(out: Path, workspace: Path | None = None) -> Path:
    """Where the build state (manifest, fragment cache) of the site in `out` lives: `<workspace>/.build/<name>-
    <hash of out's absolute path>`, one folder per output folder, never inside the published one. Without a
    workspace, beside `out` (in `.build/` of its parent)."""
    import hashlib

    out = Path(out).resolve()
    tag = hashlib.blake2b(str(out).encode(), digest_size=6).hexdigest()
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in out.name)[:40] or "site"
    return Path(workspace or out.parent).resolve() / ".build" / f"{name}-{tag}"


def adopt_state(out: Path, state: Path) -> Path:
    """Create the state folder and move in the state files an older Digest left in the site folder `out` (or
    delete them there when the state folder already has its own), so they are never published. Returns state."""
    state = Path(state)
    state.mkdir(parents=True, exist_ok=True)
    for name in STATE_FILES:
        legacy = Path(out) / name
        if not legacy.is_file() or legacy.is_symlink():
            continue
        target = state / name
        if target.exists():
            legacy.unlink()
            continue
        try:
            os.replace(legacy, target)
        except OSError:  # another filesystem: copy, then remove
            replace_with(target, legacy.read_bytes(), temp_beside(target))
            legacy.unlink()
    return state


def read_manifest(state: Path) -> dict:
    """The last build's manifest in the state folder `state` ({} when missing, unreadable or of another format:
    everything is rebuilt)."""
    try:
        data = orjson.loads((Path(state) / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    if "version" not in data and all(isinstance(v, str) for v in data.values()):
        return {"pages": data}  # the first format (path -> key): its pages are still removed when gone
    return data if data.get("version") == MANIFEST_VERSION else {}


def _present(root: Path, rels) -> set[str]:
    """Which of these relative paths exist, from one directory listing per folder (not one stat per file)."""
    found: set[str] = set()
    for folder in {rel.rpartition("/")[0] for rel in rels}:
        try:
            names = os.listdir(root / folder if folder else root)
        except OSError:
            continue
        prefix = f"{folder}/" if folder else ""
        found.update(prefix + n for n in names)
    return found


def write_site(
    out: Path,
    pages: dict,
    workers: int | None = None,
    *,
    load: Callable[[set[int]], None] | None = None,
    manifest: dict | None = None,
    extra: dict | None = None,
    fragments: Callable[[], dict] | None = None,
    state: Path | None = None,
    warm: Callable[[list[int]], None] | None = None,
    prime: Callable[[dict], None] | None = None,
) -> tuple[int, int]:
    """Render and write only pages whose input key changed since the last build (or whose file is gone).

    `pages` maps relative path -> render.Page. Before rendering, `load(needs, cards, entries, cached)` gets
    the ids of the findings the pages to render read, show as cards and as feed entries, and a lookup into
    the fragment cache. Many pages are rendered by forked workers, one per core; `fragments()` hands over
    the fragments each process rendered, which go into the cache (rows of findings gone from `extra`'s
    "items" are dropped). With `warm` and `prime`, forked workers first render the pages of one finding each
    (split by finding id) and, with `warm(ids)`, those findings' cards and entries; `prime(fragments)` hands
    them to this process before the list pages fork, so no finding is prepared twice. Pages joined from other
    pages (`parts`) are assembled last from the written
    files. The manifest of keys (plus `extra`) is saved last, so an interrupted build re-renders what it
    did not finish. Manifest and cache live in `state` (default: state_dir(out)), outside the site.
    Returns (rendered, written).
    """
    root = Path(out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    state = adopt_state(root, state or state_dir(root))
    manifest = read_manifest(state) if manifest is None else manifest
    old = manifest.get("pages", {})
    present = _present(root, pages)
    todo, joined = [], []
    for rel, page in pages.items():
        if old.get(rel) == page.key and rel in present:
            continue  # left alone: its path was checked when it was written
        _check(rel)
        (joined if page.parts else todo).append(rel)
    for folder in {rel.rpartition("/")[0] for rel in todo + joined} - {""}:
        os.makedirs(root / folder, exist_ok=True)
    cache = FragmentCache(state)
    if load is not None:
        needs = {i for rel in todo for i in pages[rel].needs}
        cards = {i for rel in todo for i in pages[rel].cards}
        entries = {i for rel in todo for i in pages[rel].entries}
        load(needs, cards, entries, cache.get)
    rendered, written, made = _run(root, pages, todo, workers, present, fragments, warm, prime)
    writer = _Writer(present)
    for rel in joined:
        page = pages[rel]
        written += writer.write(root, rel, page.join([(root / part).read_bytes() for part in page.parts]))
    rendered += len(joined)
    written += _remove_stale(root, pages, old)
    _remove_state_temps(state)
    if fragments is not None:
        made.update(fragments())
        old_items, new_items = manifest.get("items", {}), (extra or {}).get("items")
        gone = {int(i) for i in old_items if i not in new_items} if new_items is not None else set()
        cache.update(made, gone)
    data = {"version": MANIFEST_VERSION, "pages": {rel: p.key for rel, p in pages.items()}, **(extra or {})}
    if not (todo or joined or written) and data == manifest:
        return rendered, written
    replace_with(state / MANIFEST, orjson.dumps(data), temp_beside(state / MANIFEST))
    return rendered, written


_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?:[0-9a-f]{12}|tmp\d+)$")  # temp_beside's and _Writer's temp names


def _remove_stale(root: Path, pages: dict, old: dict) -> int:
    """Delete what the new manifest will not list, judged from the disk, not from the last manifest alone: a
    build killed after writing pages but before saving its manifest leaves pages no manifest ever listed.

    Every file in a folder the site's pages live in (items/, tags/, ...: folders Digest owns) that is not one
    of `pages` goes, temp files included; at the top level, where a user may keep files of their own, only
    pages of the last manifest and Digest's own temp files (of pages and of the manifest) go."""
    keep = set(pages)
    removed = 0
    folders = {rel.split("/", 1)[0] for rel in (*pages, *old) if "/" in rel}
    for folder in sorted(folders):
        try:
            _check(folder)
        except DigestError:
            continue
        if (root / folder).is_symlink():
            continue  # what a link points at is not the site's to clean (os.walk does not follow links below)
        for parent, _dirs, names in os.walk(root / folder):
            prefix = os.path.relpath(parent, root).replace(os.sep, "/")
            for name in names:
                if f"{prefix}/{name}" not in keep:
                    Path(parent, name).unlink(missing_ok=True)
                    removed += 1
    top = {rel for rel in (*pages, *old) if "/" not in rel} | {MANIFEST}
    for name in os.listdir(root):
        temp = _TEMP_RE.match(name)
        if (temp and temp["name"] in top) or (name in old and name not in keep and "/" not in name):
            path = root / name
            if path.is_file() and not path.is_symlink():
                path.unlink()
                removed += not temp
    return removed


def _remove_state_temps(state: Path) -> None:
    """A manifest temp file a killed build left in the build-state folder."""
    for name in os.listdir(state):
        temp = _TEMP_RE.match(name)
        if temp and temp["name"] == MANIFEST and (state / name).is_file():
            (state / name).unlink(missing_ok=True)


def _run(
    root: Path,
    pages: dict,
    todo: list[str],
    workers: int | None,
    present: set[str],
    fragments: Callable | None,
    warm: Callable | None = None,
    prime: Callable | None = None,
) -> tuple[int, int, dict]:
    """(pages rendered, files written, fragments rendered by forked workers)."""
    workers = workers or len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (workers or 1)
    weight = {rel: 1 + len(pages[rel].needs) + len(pages[rel].cards) + len(pages[rel].entries) for rel in todo}
    if workers <= 1 or sum(weight.values()) < PARALLEL_MIN_WORK or not hasattr(os, "fork"):
        return (*_render_and_write(root, pages, todo, present), {})
    rendered = written = 0
    made: dict = {}
    if warm is not None and prime is not None and fragments is not None:
        # Phase 1: each finding's own page (and its cards and entries) in one worker, split by finding id.
        own = [rel for rel in todo if _own_page(pages[rel])]
        if own:
            chunks: list[list[str]] = [[] for _ in range(workers)]
            ids: list[list[int]] = [[] for _ in range(workers)]
            for rel in own:
                iid = pages[rel].needs[0]
                chunks[iid % workers].append(rel)
                ids[iid % workers].append(iid)
            r, w, part = _pool(workers, (root, pages, present, fragments, warm), list(zip(chunks, ids, strict=True)))
            rendered, written = rendered + r, written + w
            made.update(part)
            prime(part)
            todo = [rel for rel in todo if not _own_page(pages[rel])]
    chunks = [[] for _ in range(workers)]
    loads = [0] * workers
    for rel in sorted(todo, key=weight.__getitem__, reverse=True):  # heaviest first, to the least loaded
        n = loads.index(min(loads))
        chunks[n].append(rel)
        loads[n] += weight[rel]
    r, w, part = _pool(workers, (root, pages, present, fragments, None), [(c, []) for c in chunks])
    made.update(part)
    return rendered + r, written + w, made


def _own_page(page) -> bool:
    """A page showing one finding and no other (an item page)."""
    return len(page.needs) == 1 and not (page.cards or page.entries or page.parts)


def _pool(workers: int, state: tuple, jobs: list[tuple[list[str], list[int]]]) -> tuple[int, int, dict]:
    """Run jobs (pages to render, then finding ids to warm) in forked workers that inherit `state`."""
    import multiprocessing

    global _FORK_STATE
    _FORK_STATE = state
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            results = pool.map(_forked, jobs)
    finally:
        _FORK_STATE = None
    made: dict = {}
    for _r, _w, part in results:
        made.update(part)
    return sum(r for r, _, _ in results), sum(w for _, w, _ in results), made


_FORK_STATE = None


def _forked(job: tuple[list[str], list[int]]) -> tuple[int, int, dict]:
    root, pages, present, fragments, warm = _FORK_STATE
    paths, ids = job
    rendered, written = _render_and_write(root, pages, paths, present)
    if warm is not None and ids:
        warm(ids)
    return rendered, written, fragments() if fragments is not None else {}
