"""One TOML file says what to follow and where to write; every mistake names file, entry and field."""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from digest.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path("data") / "digest.toml"
SOURCE_KINDS = ("arxiv", "rss", "html")
SELECTOR_FIELDS = ("item", "title", "link", "summary", "date", "tags")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
ARXIV_API = "https://export.arxiv.org/api/query?{}"


@dataclass(frozen=True)
class SiteConfig:
    title: str = "Digest"
    base_url: str = "http://localhost:8000/"
    out_dir: Path = Path("workspace/site")
    timezone: str = "UTC"
    author: str = ""  # the feeds' own <author> (RFC 4287: entries without one inherit it); default: the title
    description: str = ""  # every page's <meta name="description"> unless the page has its own
    theme: Path | None = None  # a folder whose templates and static files override the bundled ones by name
    repo_url: str = ""  # where reproduction hook scripts are browsable: repo_url + "/" + script path
    source_titles: tuple[tuple[str, str], ...] = ()  # (source name, display name) from [[source]] display_name

    @property
    def feed_author(self) -> str:
        return self.author.strip() or self.title


@dataclass(frozen=True)
class FetchConfig:
    user_agent: str = "Digest/0.1 (+https://github.com/digest-research/digest)"
    connect_timeout_s: float = 10.0
    timeout_s: float = 30.0
    min_interval_s: float = 1.0
    max_bytes: int = 15 * 1024 * 1024
    max_entries: int = 500
    arxiv_api: str = ARXIV_API
    arxiv_delay_s: float = 3.0
    arxiv_page_size: int = 100
    arxiv_max_results: int = 200
    arxiv_overlap_days: float = 7.0
    retries: int = 2
    retry_after_max_s: float = 6 * 3600.0
    retry_after_wait_s: float = 30.0
    interval_min: int = 60


@dataclass(frozen=True)
class SourceConfig:
    name: str
    kind: str
    url: str = ""
    query: str = ""
    allow_private: bool = False
    min_interval_s: float | None = None
    max_results: int | None = None
    selectors: dict[str, str] = field(default_factory=dict)
    interval_min: int | None = None
    display_name: str = ""  # the name readers see on cards (default: the source's name)


@dataclass(frozen=True)
class NewsletterConfig:
    out_dir: Path = Path("workspace/newsletter")
    sender: str = "Digest <digest@localhost>"
    unsubscribe_mailto: str = "mailto:digest@localhost?subject=unsubscribe"
    unsubscribe_url: str = ""
    send: bool = True  # `newsletter --scheduled` (cron, `digest schedule`) sends when [smtp] and subscribers exist


SMTP_SECURITY = ("starttls", "ssl", "none")
SMTP_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"  # starttls | ssl | none
    user: str = ""
    password: str = field(default="", repr=False)
    timeout_s: float = 30.0
    ca_file: str = ""  # extra CA certificates (PEM) to trust, e.g. a private CA; verification is never off
    configured: bool = False  # an [smtp] table or a DIGEST_SMTP_* variable exists (scheduled sending needs one)


@dataclass(frozen=True)
class Config:
    path: Path
    site: SiteConfig
    fetch: FetchConfig
    newsletter: NewsletterConfig
    topics_file: Path
    workspace: Path
    embed_model: str
    sources: tuple[SourceConfig, ...]
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    embed_max_tokens: int = 256  # transformer models truncate each text to this many tokens

    @property
    def default_db_url(self) -> str:
        return f"sqlite:///{self.workspace / 'digest.db'}"

    def source(self, name: str) -> SourceConfig:
        for src in self.sources:
            if src.name == name:
                return src
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"{self.path}: no source named {name!r} (known: {known})")

    def with_sources(self, sources: tuple[SourceConfig, ...]) -> Config:
        return replace(self, sources=sources)


def resolve_config_path(option: str | os.PathLike | None) -> Path:
    """Option, else $DIGEST_CONFIG, else ./data/digest.toml, else the one shipped beside the package."""
    if option:
        return Path(option)
    env = os.environ.get("DIGEST_CONFIG")
    if env:
        return Path(env)
    if DEFAULT_CONFIG.exists():
        return DEFAULT_CONFIG
    return REPO_ROOT / DEFAULT_CONFIG


def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a config file; raise ConfigError naming file, entry and field."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    if not path.is_file():
        raise ConfigError(f"{path}: not a file (--config names the TOML file itself, e.g. data/digest.toml)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config ({exc.strerror or exc})") from None
    return parse_config(raw, path)


def parse_config(raw: dict, path: Path) -> Config:
    """Pure: a TOML dict into a Config, relative paths taken from the config's folder."""
    base = path.resolve().parent
    known = {"site", "fetch", "newsletter", "topics_file", "workspace", "embed", "source", "smtp"}
    for key in raw:
        if key not in known:
            raise ConfigError(f"{path}: unknown top-level key {key!r}")
    site_raw = _table(raw, "site", path)
    fetch_raw = _table(raw, "fetch", path)
    news_raw = _table(raw, "newsletter", path)
    embed_raw = _table(raw, "embed", path)
    workspace = base / _typed(raw, "workspace", str, path, "", "../workspace")
    site = SiteConfig(
        title=_typed(site_raw, "title", str, path, "[site]", SiteConfig.title),
        base_url=_base_url(_typed(site_raw, "base_url", str, path, "[site]", SiteConfig.base_url)),
        out_dir=workspace / "site"
        if "out_dir" not in site_raw
        else base / _typed(site_raw, "out_dir", str, path, "[site]", ""),
        timezone=_typed(site_raw, "timezone", str, path, "[site]", "UTC"),
        author=_typed(site_raw, "author", str, path, "[site]", ""),
        description=_typed(site_raw, "description", str, path, "[site]", ""),
        theme=_theme(site_raw, base, path),
        repo_url=_typed(site_raw, "repo_url", str, path, "[site]", "").rstrip("/"),
    )
    fetch = FetchConfig(
        **{
            f: _typed(fetch_raw, f, type(getattr(FetchConfig, f)), path, "[fetch]", getattr(FetchConfig, f))
            for f in FetchConfig.__dataclass_fields__
        }
    )
    _check_unknown(fetch_raw, FetchConfig.__dataclass_fields__, path, "[fetch]")
    if not 0 <= fetch.arxiv_overlap_days <= 365:
        raise ConfigError(f"{path}: [fetch]: field 'arxiv_overlap_days' must be between 0 and 365")
    _check_unknown(site_raw, set(SiteConfig.__dataclass_fields__) - {"source_titles"}, path, "[site]")
    _check_unknown(news_raw, NewsletterConfig.__dataclass_fields__, path, "[newsletter]")
    _check_unknown(embed_raw, {"model", "max_tokens"}, path, "[embed]")
    _check_fetch(fetch, path)  # ranges, once every field has its type
    max_tokens = _typed(embed_raw, "max_tokens", int, path, "[embed]", 256)
    if not 8 <= max_tokens <= 512:
        raise ConfigError(f"{path}: [embed]: field 'max_tokens' must be between 8 and 512 (got {max_tokens})")
    newsletter = NewsletterConfig(
        out_dir=workspace / "newsletter"
        if "out_dir" not in news_raw
        else base / _typed(news_raw, "out_dir", str, path, "[newsletter]", ""),
        sender=_typed(news_raw, "sender", str, path, "[newsletter]", NewsletterConfig.sender),
        unsubscribe_mailto=_typed(
            news_raw, "unsubscribe_mailto", str, path, "[newsletter]", NewsletterConfig.unsubscribe_mailto
        ),
        unsubscribe_url=_typed(news_raw, "unsubscribe_url", str, path, "[newsletter]", ""),
        send=_typed(news_raw, "send", bool, path, "[newsletter]", True),
    )
    topics_file = base / _typed(raw, "topics_file", str, path, "", "topics.toml")
    sources_raw = raw.get("source", [])
    if not isinstance(sources_raw, list):
        raise ConfigError(f"{path}: 'source' must be a list of [[source]] tables")
    sources = tuple(_source(s, i, path) for i, s in enumerate(sources_raw))
    seen: set[str] = set()
    for name in (s.name for s in sources):
        if name in seen:
            raise ConfigError(f"{path}: source {name!r}: field 'name' is used by more than one source")
        seen.add(name)
    site = replace(site, source_titles=tuple((s.name, s.display_name) for s in sources if s.display_name))
    return Config(
        path=path,
        site=site,
        fetch=fetch,
        newsletter=newsletter,
        topics_file=topics_file,
        workspace=workspace,
        embed_model=_typed(embed_raw, "model", str, path, "[embed]", "all-MiniLM-L6-v2"),
        sources=sources,
        smtp=_smtp(_table(raw, "smtp", path), path),
        embed_max_tokens=max_tokens,
    )


# [fetch] numbers: (lowest, highest, lowest allowed itself); every one must also be finite.
FETCH_RANGES: dict[str, tuple[float, float, bool]] = {
    "connect_timeout_s": (0, 3600, False),
    "timeout_s": (0, 3600, False),
    "min_interval_s": (0, 86400, True),
    "max_bytes": (1, 2**31, True),
    "max_entries": (1, 100_000, True),
    "arxiv_delay_s": (0, 3600, True),
    "arxiv_page_size": (1, 2000, True),  # the arXiv API serves at most 2,000 results a page
    "arxiv_max_results": (1, 1_000_000, True),
    "retries": (0, 10, True),
    "retry_after_max_s": (0, 7 * 86400, True),
    "retry_after_wait_s": (0, 3600, True),
    "interval_min": (1, 7 * 24 * 60, True),
}


def _check_range(value: float, low: float, high: float, low_ok: bool, path: Path, where: str, key: str) -> None:
    """One clean error for a number out of range, NaN or infinite (TOML has nan and inf)."""
    if not math.isfinite(value) or value > high or value < low or (value == low and not low_ok):
        bound = f">= {low:g}" if low_ok else f"> {low:g}"
        raise ConfigError(
            f"{path}: {where}: field {key!r} must be a finite number {bound} and <= {high:g} (got {value!r})"
        )


def _check_fetch(fetch: FetchConfig, path: Path) -> None:
    for key, (low, high, low_ok) in FETCH_RANGES.items():
        _check_range(getattr(fetch, key), low, high, low_ok, path, "[fetch]", key)
    ua = fetch.user_agent
    if not ua.strip() or not ua.isascii() or not ua.isprintable():
        raise ConfigError(f"{path}: [fetch]: field 'user_agent' must be one non-empty line of printable ASCII")
    if not re.match(r"^https?://[^/\s]+", fetch.arxiv_api) or fetch.arxiv_api.count("{}") != 1:
        raise ConfigError(
            f"{path}: [fetch]: field 'arxiv_api' must be an http(s) URL with one '{{}}' for the query "
            f"(got {fetch.arxiv_api!r})"
        )


def _smtp(raw: dict, path: Path) -> SmtpConfig:
    """[smtp] from the file, each field overridable by DIGEST_SMTP_<FIELD> (e.g. DIGEST_SMTP_PASSWORD)."""
    _check_unknown(raw, set(SmtpConfig.__dataclass_fields__) - {"configured"}, path, "[smtp]")
    configured = bool(raw) or any(k.startswith("DIGEST_SMTP_") for k in os.environ)
    raw = dict(raw)
    for name, kind in (
        ("host", str), ("port", int), ("security", str), ("user", str), ("password", str), ("ca_file", str),
    ):  # fmt: skip
        env = os.environ.get(f"DIGEST_SMTP_{name.upper()}")
        if env is None:
            continue
        if kind is int:
            try:
                raw[name] = int(env)
            except ValueError:
                raise ConfigError(f"DIGEST_SMTP_{name.upper()}: must be an integer (got {env!r})") from None
        else:
            raw[name] = env
    security = _typed(raw, "security", str, path, "[smtp]", "starttls")
    if security not in SMTP_SECURITY:
        raise ConfigError(
            f"{path}: [smtp]: field 'security' must be one of {', '.join(SMTP_SECURITY)} (got {security!r})"
        )
    port = _typed(raw, "port", int, path, "[smtp]", SMTP_DEFAULT_PORTS[security])
    if not 0 < port < 65536:
        raise ConfigError(f"{path}: [smtp]: field 'port' must be 1-65535 (got {port})")
    return SmtpConfig(
        host=_typed(raw, "host", str, path, "[smtp]", "localhost"),
        port=port,
        security=security,
        user=_typed(raw, "user", str, path, "[smtp]", ""),
        password=_typed(raw, "password", str, path, "[smtp]", ""),
        timeout_s=_smtp_timeout(_typed(raw, "timeout_s", float, path, "[smtp]", 30.0), path),
        ca_file=_ca_file(_typed(raw, "ca_file", str, path, "[smtp]", ""), path),
        configured=configured,
    )


def _smtp_timeout(value: float, path: Path) -> float:
    _check_range(value, 0, 3600, False, path, "[smtp]", "timeout_s")
    return value


def _ca_file(value: str, path: Path) -> str:
    """A CA bundle path, relative to the config file's folder; it must exist."""
    if not value:
        return ""
    ca = (path.parent / value).expanduser() if not Path(value).is_absolute() else Path(value)
    if not ca.is_file():
        raise ConfigError(f"{path}: [smtp]: field 'ca_file': no such file {str(ca)!r}")
    return str(ca)


def _source(raw: object, index: int, path: Path) -> SourceConfig:
    where = f"source[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {where}: must be a table")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError(f"{path}: {where}: field 'name' must be lowercase letters, digits and '-' (got {name!r})")
    where = f"source[{index}] {name!r}"
    kind = raw.get("kind")
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{path}: {where}: field 'kind' must be one of {', '.join(SOURCE_KINDS)} (got {kind!r})")
    allowed = {
        "name",
        "kind",
        "url",
        "query",
        "allow_private",
        "min_interval_s",
        "max_results",
        "interval_min",
        "display_name",
        *SELECTOR_FIELDS,
    }
    _check_unknown(raw, allowed, path, where)
    url = _typed(raw, "url", str, path, where, "")
    query = _typed(raw, "query", str, path, where, "")
    if kind == "arxiv" and not query:
        raise ConfigError(f"{path}: {where}: field 'query' is required for kind 'arxiv'")
    if kind in ("rss", "html"):
        if not url:
            raise ConfigError(f"{path}: {where}: field 'url' is required for kind {kind!r}")
        if not re.match(r"^https?://[^/\s]+", url):
            raise ConfigError(f"{path}: {where}: field 'url' must be an http(s) URL (got {url!r})")
    selectors = {k: raw[k] for k in SELECTOR_FIELDS if k in raw}
    for key, value in selectors.items():
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{path}: {where}: field {key!r} must be a non-empty CSS selector")
    if kind == "html":
        for key in ("item", "title", "link"):
            if key not in selectors:
                raise ConfigError(f"{path}: {where}: field {key!r} (a CSS selector) is required for kind 'html'")
    interval = raw.get("min_interval_s")
    if interval is not None and (
        not isinstance(interval, int | float)
        or isinstance(interval, bool)
        or not math.isfinite(interval)
        or not 0 <= interval <= 86400
    ):
        raise ConfigError(f"{path}: {where}: field 'min_interval_s' must be a finite number >= 0 and <= 86400")
    max_results = raw.get("max_results")
    if max_results is not None and (
        not isinstance(max_results, int) or isinstance(max_results, bool) or not 1 <= max_results <= 1_000_000
    ):
        raise ConfigError(f"{path}: {where}: field 'max_results' must be a positive integer (at most 1,000,000)")
    interval_min = raw.get("interval_min")
    if interval_min is not None and (
        not isinstance(interval_min, int) or isinstance(interval_min, bool) or not 1 <= interval_min <= 7 * 24 * 60
    ):
        raise ConfigError(f"{path}: {where}: field 'interval_min' must be a positive integer (minutes)")
    return SourceConfig(
        name=name,
        kind=kind,
        url=url,
        query=query,
        allow_private=_typed(raw, "allow_private", bool, path, where, False),
        min_interval_s=float(interval) if interval is not None else None,
        max_results=max_results,
        selectors=selectors,
        interval_min=interval_min,
        display_name=_typed(raw, "display_name", str, path, where, "").strip(),
    )


def _theme(site_raw: dict, base: Path, path: Path) -> Path | None:
    """[site] theme: a folder (relative to the config file) that must exist."""
    value = _typed(site_raw, "theme", str, path, "[site]", "")
    if not value:
        return None
    folder = base / value
    if not folder.is_dir():
        raise ConfigError(f"{path}: [site]: field 'theme' must be a folder; {folder} is not one")
    return folder


def _table(raw: dict, key: str, path: Path) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: [{key}] must be a table")
    return value


def _typed(raw: dict, key: str, kind: type, path: Path, where: str, default):
    if key not in raw:
        return default
    value = raw[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{path}: {prefix}field {key!r} must be {kind.__name__} (got {value!r})")
    return value


def _check_unknown(raw: dict, allowed, path: Path, where: str) -> None:
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{path}: {where}: unknown field {key!r}")


def _base_url(url: str) -> str:
    return url if url.endswith("/") else url + "/"
