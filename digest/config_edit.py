"""Editing the user's config file in place (tomlkit keeps its comments and layout); every edit is validated by
loading the new text before the file is replaced, and the replacement is atomic."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

from digest.errors import ConfigError


def _load(path: Path):
    import tomlkit

    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _save(path: Path, text: str) -> None:
    """Validate `text` as a Digest config at `path`, then replace the file atomically."""
    import tomllib

    from digest.config import parse_config

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: the edit would not be valid TOML ({exc}); the file is unchanged") from None
    parse_config(data, path)  # raises ConfigError naming the bad entry; the file is untouched
    target = path.resolve()  # a symlinked config (a dotfiles checkout) is edited where it lives, the link kept
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the config ({exc.strerror or exc}); the file is unchanged") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, mode)  # mkstemp makes 0600: keep the file's own permissions
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write the config ({exc.strerror or exc}); the file is unchanged") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def comment_line(text: str) -> str:
    """`text` as one TOML comment's body: line breaks and other whitespace runs become one space, and control
    characters (which TOML forbids in comments) go, so a feed's title can never start a line of its own."""
    flat = " ".join(text.split())
    return "".join(c for c in flat if c >= " " and c != "\x7f")


def append_sources(path: Path, blocks: list[dict], comments: list[str] | None = None) -> None:
    """Add `[[source]]` tables at the end of the config, each after an optional comment line."""
    import tomlkit

    doc = _load(path)
    pieces = [tomlkit.dumps(doc).rstrip("\n") + "\n"]
    for n, block in enumerate(blocks):
        table = tomlkit.table()
        for key, value in block.items():
            table.add(key, value)
        aot = tomlkit.aot()
        aot.append(table)
        comment = comment_line((comments or [])[n]) if comments and n < len(comments) else ""
        piece = tomlkit.dumps({"source": aot})
        pieces.append("\n" + (f"# {comment}\n" if comment else "") + piece)
    _save(path, "".join(pieces))


def remove_source(path: Path, name: str) -> None:
    """Delete the `[[source]]` named `name` with the comment lines just above it, keeping every other line and
    comment where it was (tomlkit would hand the next source's comment to the removed table)."""
    import tomllib

    import tomlkit

    doc = _load(path)
    sources = doc.get("source")
    if sources is None or not any(s.get("name") == name for s in sources):
        raise ConfigError(f"{path}: no source named {name!r}")
    index = next(i for i, s in enumerate(sources) if s.get("name") == name)
    wanted = [s.get("name") for s in sources if s.get("name") != name]
    lines = tomlkit.dumps(doc).splitlines(keepends=True)
    headers = [i for i, line in enumerate(lines) if re.match(r"\s*\[", line)]
    ours = [i for i in headers if re.match(r"\s*\[\[\s*source\s*\]\]", lines[i])]

    def lead(h: int) -> int:
        """The first of the comment lines directly above line h (they belong to its table)."""
        while h > 0 and lines[h - 1].lstrip().startswith("#"):
            h -= 1
        return h

    text = ""
    if len(ours) == len(sources):
        start = ours[index]
        end = next((h for h in headers if h > start), None)
        text = "".join(lines[: lead(start)] + (lines[lead(end) :] if end is not None else []))
        try:
            kept = [s.get("name") for s in tomllib.loads(text).get("source", [])]
        except tomllib.TOMLDecodeError:
            kept = None
        if kept != wanted:
            text = ""
    if not text:  # an unusual layout: let tomlkit remove the table
        del sources[index]
        text = tomlkit.dumps(doc)
    _save(path, text)
