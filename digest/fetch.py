"""Network only: one polite httpx client (conditional GET, size cap, private-address guard, per-host pacing)."""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from digest.config import FetchConfig, SourceConfig
from digest.errors import FetchError

MAX_REDIRECTS = 5
TRANSIENT_STATUSES = {500, 502, 503, 504}  # retried with backoff; every other error status is final
DEFAULT_RETRY_AFTER_S = 60.0  # a 429 or 503 that does not say how long to wait


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One verified TLS context (httpx's defaults, SSL_CERT_FILE and SSL_CERT_DIR read once) per process:
    loading the CA bundle costs ~50 ms, which a scheduler would otherwise pay on every run."""
    return httpx.create_ssl_context()


def warm_up() -> threading.Thread:
    """Load the CA bundle on a second thread while the caller prepares the database: OpenSSL reads the
    certificates without the GIL. Join the thread before making a Fetcher."""
    thread = threading.Thread(target=tls_context, name="digest-tls-context", daemon=True)
    thread.start()
    return thread


def load_arxiv() -> None:
    """Import the arxiv package now (~0.06 s, mostly `requests`), e.g. while the TLS context loads."""
    import arxiv  # noqa: F401


class GoneError(FetchError):
    """HTTP 410: the source is gone for good and gets disabled."""


class DeferredError(FetchError):
    """The host asked us to come back later (429/503 Retry-After); `wait_s` says how long from now."""

    def __init__(self, message: str, host: str, wait_s: float):
        super().__init__(message)
        self.host = host
        self.wait_s = wait_s


@dataclass
class Validators:
    etag: str = ""
    last_modified: str = ""


@dataclass
class Response:
    status: int
    url: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    permanent_url: str = ""  # set when a 301/308 moved the feed for good

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def validators(self) -> Validators:
        return Validators(self.headers.get("etag", ""), self.headers.get("last-modified", ""))


class Fetcher:
    """Owns the one httpx.Client of a run and the per-host clocks that keep us polite."""

    def __init__(
        self,
        config: FetchConfig,
        transport: httpx.BaseTransport | None = None,
        holds: dict[str, float] | None = None,
    ):
        self.config = config
        self._last_hit: dict[str, float] = {}
        now = time.monotonic()
        # host -> monotonic time its Retry-After ends; `holds` carries earlier runs' in, as seconds from now
        self._blocked_until: dict[str, float] = {h: now + s for h, s in (holds or {}).items()}
        self.client = httpx.Client(
            headers={"User-Agent": config.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            transport=transport,
            verify=tls_context(),
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def holds(self) -> dict[str, float]:
        """Hosts still under a Retry-After, as seconds from now (to persist for the next run)."""
        now = time.monotonic()
        return {host: until - now for host, until in self._blocked_until.items() if until > now}

    def blocked_for(self, url: str) -> float:
        """Seconds until the host of `url` may be asked again (0 when it is not under a Retry-After)."""
        until = self._blocked_until.get(urlsplit(url).netloc, 0.0)
        return max(0.0, until - time.monotonic())

    def get(
        self,
        source: SourceConfig,
        url: str,
        validators: Validators | None = None,
        retries: int | None = None,
        min_interval_s: float | None = None,
    ) -> Response:
        """GET with conditional headers; raise FetchError (GoneError, DeferredError) with a one-line reason."""
        check_url(url, source.allow_private)
        host = urlsplit(url).netloc
        wait = self.blocked_for(url)
        if wait > 0:
            raise DeferredError(f"{host} asked us to retry in {wait:.0f}s", host, wait)
        retries = self.config.retries if retries is None else retries
        headers = {}
        if validators and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        if min_interval_s is not None:
            interval = min_interval_s
        elif source.min_interval_s is not None:
            interval = source.min_interval_s
        else:
            interval = self.config.min_interval_s
        for attempt in range(retries + 1):
            self._pace(host, interval)
            try:
                response = self._stream(url, headers, source.allow_private)
            except httpx.TooManyRedirects:
                raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects") from None
            except httpx.TimeoutException:
                if attempt < retries:
                    self._backoff(attempt)
                    continue
                raise FetchError(f"{url}: timed out") from None
            except httpx.TransportError as exc:
                if attempt < retries:
                    self._backoff(attempt)
                    continue
                raise FetchError(f"{url}: cannot connect ({type(exc).__name__}: {exc})") from None
            if response.status == 304 or 200 <= response.status < 300:
                return response
            if response.status == 410:
                raise GoneError(f"{url}: HTTP 410 Gone")
            retry_after = response.headers.get("retry-after")
            if response.status == 429 or (response.status == 503 and retry_after):
                delay = min(parse_retry_after(retry_after) or DEFAULT_RETRY_AFTER_S, self.config.retry_after_max_s)
                self._blocked_until[host] = time.monotonic() + delay
                raise DeferredError(f"{url}: HTTP {response.status}, retry after {delay:.0f}s", host, delay)
            if response.status in TRANSIENT_STATUSES and attempt < retries:
                self._backoff(attempt)
                continue
            raise FetchError(f"{url}: HTTP {response.status}")
        raise FetchError(f"{url}: gave up")  # pragma: no cover - loop always returns or raises

    def _backoff(self, attempt: int) -> None:
        time.sleep(min(0.5 * 2**attempt, 30.0))

    def _stream(self, url: str, headers: dict[str, str], allow_private: bool) -> Response:
        deadline = time.monotonic() + self.config.timeout_s  # total, not just between two reads
        with self.client.stream("GET", url, headers=headers) as resp:
            for hop in [*resp.history, resp]:
                check_url(str(hop.url), allow_private)
            permanent = ""
            if resp.history and all(h.status_code in (301, 308) for h in resp.history):
                permanent = str(resp.url)
            body = bytearray()
            if resp.status_code != 304:
                for chunk in resp.iter_bytes():  # decompressed: the cap holds against gzip bombs
                    body.extend(chunk)
                    if len(body) > self.config.max_bytes:
                        raise FetchError(f"{url}: response larger than {self.config.max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise httpx.ReadTimeout("total timeout")
            return Response(
                status=resp.status_code,
                url=str(resp.url),
                body=bytes(body),
                headers={k.lower(): v for k, v in resp.headers.items()},
                permanent_url=permanent,
            )

    def _pace(self, host: str, interval: float) -> None:
        last = self._last_hit.get(host)
        if last is not None:
            wait = interval - (time.monotonic() - last)
            if wait > 0:
                time.sleep(wait)
        self._last_hit[host] = time.monotonic()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def check_url(url: str, allow_private: bool) -> None:
    """Only http(s); loopback, private and link-local hosts only where the source allows them."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"{url}: only http and https URLs can be fetched")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise FetchError(f"{url}: cannot resolve host {parts.hostname!r}") from None
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_reserved or addr.is_unspecified:
            raise FetchError(
                f"{url}: refusing to fetch private address {addr} (set allow_private = true for this source)"
            )


def arxiv_page_url(config: FetchConfig, query: str, start: int, size: int) -> str:
    """One page of an arXiv API query, newest revision first; `arxiv.Search` holds the query spec."""
    from urllib.parse import urlencode

    import arxiv

    search = arxiv.Search(
        query=query, sort_by=arxiv.SortCriterion.LastUpdatedDate, sort_order=arxiv.SortOrder.Descending
    )
    args = {
        "search_query": search.query,
        "sortBy": search.sort_by.value,
        "sortOrder": search.sort_order.value,
        "start": str(start),
        "max_results": str(size),
    }
    return config.arxiv_api.format(urlencode(args))
