"""Network only: one polite httpx client (conditional GET, size cap, private-address guard, per-host pacing)."""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from digest.config import FetchConfig, SourceConfig
from digest.errors import FetchError

MAX_REDIRECTS = 5
RETRY_STATUSES = {500, 502, 503, 504}


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
    """Owns the one httpx.Client of a run and the per-host clock that keeps us polite."""

    def __init__(self, config: FetchConfig, transport: httpx.BaseTransport | None = None):
        self.config = config
        self._last_hit: dict[str, float] = {}
        self.client = httpx.Client(
            headers={"User-Agent": config.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get(self, source: SourceConfig, url: str, validators: Validators | None = None, retries: int = 2) -> Response:
        """GET with conditional headers; raise FetchError with a one-line reason on failure."""
        check_url(url, source.allow_private)
        headers = {}
        if validators and validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators and validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        interval = source.min_interval_s if source.min_interval_s is not None else self.config.min_interval_s
        for attempt in range(retries + 1):
            self._pace(url, interval)
            try:
                response = self._stream(url, headers, source.allow_private)
            except httpx.TooManyRedirects:
                raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects") from None
            except httpx.TimeoutException:
                if attempt < retries:
                    time.sleep(0.5 * 2**attempt)
                    continue
                raise FetchError(f"{url}: timed out") from None
            except httpx.TransportError as exc:
                if attempt < retries:
                    time.sleep(0.5 * 2**attempt)
                    continue
                raise FetchError(f"{url}: cannot connect ({type(exc).__name__}: {exc})") from None
            if response.status in RETRY_STATUSES and attempt < retries:
                time.sleep(0.5 * 2**attempt)
                continue
            if response.status == 304 or 200 <= response.status < 300:
                return response
            raise FetchError(f"{url}: HTTP {response.status}")
        raise FetchError(f"{url}: gave up")  # pragma: no cover - loop always returns or raises

    def _stream(self, url: str, headers: dict[str, str], allow_private: bool) -> Response:
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
            return Response(
                status=resp.status_code,
                url=str(resp.url),
                body=bytes(body),
                headers={k.lower(): v for k, v in resp.headers.items()},
                permanent_url=permanent,
            )

    def _pace(self, url: str, interval: float) -> None:
        host = urlsplit(url).netloc
        last = self._last_hit.get(host)
        if last is not None:
            wait = interval - (time.monotonic() - last)
            if wait > 0:
                time.sleep(wait)
        self._last_hit[host] = time.monotonic()


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


def arxiv_client(config: FetchConfig):
    """One arxiv.Client per run: one connection, one 3-second clock shared by every arXiv source."""
    import arxiv

    client = arxiv.Client(page_size=config.arxiv_page_size, delay_seconds=config.arxiv_delay_s, num_retries=2)
    client.query_url_format = config.arxiv_api
    return client


def fetch_arxiv(client, source: SourceConfig, config: FetchConfig) -> list:
    """All results of one arXiv query, newest first; an error mid-way fails the whole source."""
    import arxiv
    import requests

    search = arxiv.Search(
        query=source.query,
        max_results=source.max_results or config.arxiv_max_results,
        sort_by=arxiv.SortCriterion.SubmittedDate,
        sort_order=arxiv.SortOrder.Descending,
    )
    try:
        return list(client.results(search))
    except arxiv.UnexpectedEmptyPageError:
        raise FetchError("arXiv returned an empty page mid-way: incomplete run") from None
    except arxiv.HTTPError as exc:
        raise FetchError(f"arXiv API answered HTTP {exc.status}") from None
    except requests.RequestException as exc:
        host = urlsplit(config.arxiv_api).netloc
        raise FetchError(f"arXiv API at {host} unreachable ({type(exc).__name__})") from None
