"""Network only: one polite httpx client (conditional GET, size cap, private-address guard, per-host pacing)."""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from digest.config import FetchConfig, SourceConfig
from digest.errors import FetchError

MAX_REDIRECTS = 5
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
MAX_CODINGS = 2  # Content-Encoding layers we decode (each capped); more is refused
DECODE_PIECE = 64 * 1024  # the most any one decoding step produces at a time
Resolver = Callable[[str, int], list[str]]  # (host, port) -> its addresses
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


class ClientError(FetchError):
    """HTTP 4xx other than 410/429: the request itself is wrong (a bad query); retrying will not help. `body`
    holds the answer (arXiv explains a bad query in it)."""

    def __init__(self, message: str, status: int, body: bytes):
        super().__init__(message)
        self.status = status
        self.body = body


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


@dataclass
class FetchTrace:
    """What one get() did: the hops it requested, bytes each decoding layer produced, how it ended."""

    url: str
    deadline: float
    hops: list[str] = field(default_factory=list)
    layers: list[int] = field(default_factory=list)
    outcome: str = ""


class PrivateAddressError(FetchError):
    """A host resolved to a loopback, private or otherwise non-public address; raised before connecting."""


class TooLarge(Exception):
    """A decoding layer or the body passed `max_bytes`."""


_deadline: contextvars.ContextVar[tuple[float, Callable[[], float]] | None] = contextvars.ContextVar(
    "digest_fetch_deadline", default=None
)


def _remaining(timeout: float | None, error: type[Exception]) -> float | None:
    """A socket operation's timeout, shortened to what is left of the fetch's deadline (raise when none is)."""
    current = _deadline.get()
    if current is None:
        return timeout
    deadline, clock = current
    left = deadline - clock()
    if left <= 0:
        raise error("the fetch's deadline has passed")
    return left if timeout is None else min(timeout, left)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host, in its order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_public_address(address: str) -> bool:
    """True only for globally routable unicast addresses, also when an IPv4 one hides inside IPv6."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:  # not an address at all: never public
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return ip.is_global and not ip.is_multicast


class DeadlineStream(httpcore.NetworkStream):
    """A socket whose every read, write and TLS handshake ends by the fetch's deadline: a server that
    sends its headers one byte a second is cut off like one that sends nothing."""

    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _remaining(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _remaining(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        inner = self._stream.start_tls(ssl_context, server_hostname, _remaining(timeout, httpcore.ConnectTimeout))
        return DeadlineStream(inner)

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Resolve once, check every address, connect to a checked one: what was checked is what is reached."""

    def __init__(self, resolver: Resolver, is_public: Callable[[str], bool], allow_private: bool, clock):
        self.resolver, self.is_public, self.allow_private, self.clock = resolver, is_public, allow_private, clock
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        addresses = self._resolve(host, port)
        if not self.allow_private:
            for address in addresses:
                if not self.is_public(address):
                    raise PrivateAddressError(
                        f"refusing to fetch private address {address} of {host} "
                        "(set allow_private = true for this source)"
                    )
        error: Exception = httpcore.ConnectError(f"{host}: no address")
        for address in addresses:
            try:
                stream = self._inner.connect_tcp(
                    address,
                    port,
                    timeout=_remaining(timeout, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                error = exc
                continue
            return DeadlineStream(stream)
        raise error

    def connect_unix_socket(self, *args, **kwargs):  # pragma: no cover - never configured
        raise httpcore.ConnectError("unix sockets are not fetched")

    def sleep(self, seconds: float) -> None:  # pragma: no cover - used by httpcore retries, which are off
        time.sleep(seconds)

    def _resolve(self, host: str, port: int) -> list[str]:
        """One lookup, on a helper thread so that a slow resolver is also held to the deadline."""
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        box: dict[str, object] = {}

        def lookup() -> None:
            try:
                box["addresses"] = [str(a) for a in self.resolver(host, port)]
            except Exception as exc:  # socket.gaierror, UnicodeError (a label too long), ...: cannot resolve
                box["error"] = exc

        worker = threading.Thread(target=lookup, name="digest-resolve", daemon=True)
        worker.start()
        worker.join(_remaining(None, httpcore.ConnectTimeout))
        if worker.is_alive():
            raise httpcore.ConnectTimeout(f"resolving {host} passed the fetch's deadline")
        addresses = box.get("addresses")
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve host {host!r}")
        return addresses  # type: ignore[return-value]


class GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport (request and response mapping, TLS with SNI and Host from the URL) on a
    connection pool whose sockets come from a GuardedBackend."""

    def __init__(self, backend: GuardedBackend, verify: ssl.SSLContext):
        super().__init__(verify=verify)
        limits = httpx.Limits()
        self._pool = httpcore.ConnectionPool(
            ssl_context=verify,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=backend,
        )


class _Deflate:
    """`deflate` as servers send it: zlib-wrapped, or raw (as httpx also accepts)."""

    def __init__(self):
        self._obj = None

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._obj is None:
            obj = zlib.decompressobj()
            try:
                out = obj.decompress(data, max_length)
            except zlib.error:
                obj = zlib.decompressobj(-zlib.MAX_WBITS)
                out = obj.decompress(data, max_length)
            self._obj = obj
            return out
        return self._obj.decompress(data, max_length)

    @property
    def unconsumed_tail(self) -> bytes:
        return self._obj.unconsumed_tail if self._obj is not None else b""

    def flush(self) -> bytes:
        return self._obj.flush() if self._obj is not None else b""


def _decoder(coding: str):
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return _Deflate()
    raise ValueError(f"unsupported Content-Encoding {coding!r}")


class Layers:
    """Content-Encoding layers undone one bounded step at a time: no layer ever produces more than `cap`
    bytes, and no step more than DECODE_PIECE, so `gzip, gzip` (KBs -> GBs) stops at the cap in bounded
    memory. `produced[i]` counts the bytes layer i (outermost first) has produced."""

    def __init__(self, content_encoding: str, cap: int):
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > MAX_CODINGS:
            raise ValueError(f"{len(codings)} content codings (at most {MAX_CODINGS} are decoded)")
        self.decoders = [_decoder(c) for c in reversed(codings)]  # the last coding applied is undone first
        self.produced = [0] * len(self.decoders)
        self.cap = cap

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._push(0, data)

    def flush(self) -> Iterator[bytes]:
        for i, decoder in enumerate(self.decoders):
            out = decoder.flush()
            if out:
                self._count(i, out)
                yield from self._push(i + 1, out)

    def _push(self, i: int, data: bytes) -> Iterator[bytes]:
        if i == len(self.decoders):
            if data:
                yield data
            return
        decoder = self.decoders[i]
        while True:
            out = decoder.decompress(data, DECODE_PIECE)
            data = decoder.unconsumed_tail
            if out:
                self._count(i, out)
                yield from self._push(i + 1, out)
            if not data and len(out) < DECODE_PIECE:
                return

    def _count(self, i: int, out: bytes) -> None:
        self.produced[i] += len(out)
        if self.produced[i] > self.cap:
            raise TooLarge


def check_scheme(url: str) -> None:
    """Only http(s) URLs with a host are fetched."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"{url[:200]}: only http and https URLs can be fetched")


def next_hop(current: str, location: str) -> str:
    """The URL a redirect points to, refused (one clean error) unless it is http(s)."""
    try:
        target = urljoin(current, location.strip())
        check_scheme(target)
        _ = urlsplit(target).port  # ValueError when out of range
        httpx.URL(target)
    except FetchError:
        raise FetchError(f"{current}: redirect to {location[:200]!r} refused: only http(s) is followed") from None
    except (httpx.InvalidURL, ValueError):
        raise FetchError(f"{current}: redirect to an invalid URL {location[:200]!r}") from None
    return target


class Fetcher:
    """Owns the httpx clients of a run and the per-host clocks that keep us polite.

    Every connection goes through `GuardedBackend`: a host name is resolved once, every address it
    resolves to is checked, and the socket connects to the checked address (so DNS rebinding cannot
    reach a private host); redirects are followed here, hop by hop, each hop checked before it is
    requested. One deadline (`timeout_s`, on `clock`) covers a fetch's connect, headers and body.
    `resolver`, `clock` and `verify` (the TLS context) are seams for tests; `is_public` decides which
    addresses count as public.
    """

    def __init__(
        self,
        config: FetchConfig,
        transport: httpx.BaseTransport | None = None,
        holds: dict[str, float] | None = None,
        resolver: Resolver | None = None,
        clock: Callable[[], float] = time.monotonic,
        is_public: Callable[[str], bool] | None = None,
        verify: ssl.SSLContext | None = None,
    ):
        self.config = config
        self.clock = clock
        self._last_hit: dict[str, float] = {}
        now = time.monotonic()
        # host -> monotonic time its Retry-After ends; `holds` carries earlier runs' in, as seconds from now
        self._blocked_until: dict[str, float] = {h: now + s for h, s in (holds or {}).items()}
        self._transport = transport
        self._resolver = resolver or system_resolver
        self._is_public = is_public or is_public_address
        self._verify = verify
        self._clients: dict[bool, tuple[httpx.Client, httpx.BaseTransport]] = {}
        self.last: FetchTrace | None = None  # what the latest get() did, for logs and tests

    def client(self, allow_private: bool) -> tuple[httpx.Client, httpx.BaseTransport]:
        """One client (it builds requests) and transport per guard setting: a pooled connection opened for
        a private source is never reused by a guarded one."""
        if allow_private not in self._clients:
            backend = GuardedBackend(self._resolver, self._is_public, allow_private, self.clock)
            transport = self._transport or GuardedTransport(backend, verify=self._verify or tls_context())
            client = httpx.Client(
                headers={"User-Agent": self.config.user_agent, "Accept-Encoding": "gzip, deflate"},
                timeout=httpx.Timeout(self.config.timeout_s, connect=self.config.connect_timeout_s),
                transport=transport,
                trust_env=False,  # an environment proxy would resolve names itself, past the guard
            )
            self._clients[allow_private] = (client, transport)
        return self._clients[allow_private]

    def close(self) -> None:
        for client, _ in self._clients.values():
            client.close()
        self._clients.clear()

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
        """GET with conditional headers; raise FetchError (GoneError, DeferredError) with a one-line reason.

        The whole call, retries and backoff included, ends within `timeout_s` of its first request."""
        check_scheme(url)
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
        self._pace(host, interval)
        trace = self.last = FetchTrace(url=url, deadline=self.clock() + self.config.timeout_s)
        token = _deadline.set((trace.deadline, self.clock))
        try:
            return self._attempts(source, url, headers, retries, trace)
        except FetchError as exc:
            trace.outcome = str(exc)
            raise
        finally:
            _deadline.reset(token)

    def _attempts(
        self, source: SourceConfig, url: str, headers: dict[str, str], retries: int, trace: FetchTrace
    ) -> Response:
        for attempt in range(retries + 1):
            if attempt:
                self._pace(urlsplit(url).netloc, 0.0)
            try:
                response = self._stream(url, headers, source.allow_private, trace)
            except httpx.TimeoutException:
                if self.clock() >= trace.deadline:
                    raise FetchError(f"{url}: timed out (the whole fetch has {self.config.timeout_s:g}s)") from None
                if attempt < retries and self._backoff(attempt, trace):
                    continue
                raise FetchError(f"{url}: timed out") from None
            except httpx.TransportError as exc:
                if attempt < retries and self._backoff(attempt, trace):
                    continue
                raise FetchError(f"{url}: cannot connect ({type(exc).__name__}: {exc})") from None
            except httpx.HTTPError as exc:  # DecodingError, ...: this source only, never the run
                raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from None
            except (httpx.InvalidURL, UnicodeError) as exc:  # a bad host name (IDNA), a control character
                raise FetchError(f"{url[:200]}: invalid URL ({exc})") from None
            trace.outcome = f"HTTP {response.status}"
            if response.status == 304 or 200 <= response.status < 300:
                return response
            host = urlsplit(url).netloc
            if response.status == 410:
                raise GoneError(f"{url}: HTTP 410 Gone")
            retry_after = response.headers.get("retry-after")
            if response.status == 429 or (response.status == 503 and retry_after):
                delay = min(parse_retry_after(retry_after) or DEFAULT_RETRY_AFTER_S, self.config.retry_after_max_s)
                self._blocked_until[host] = time.monotonic() + delay
                raise DeferredError(f"{url}: HTTP {response.status}, retry after {delay:.0f}s", host, delay)
            if response.status in TRANSIENT_STATUSES and attempt < retries and self._backoff(attempt, trace):
                continue
            if 400 <= response.status < 500:
                raise ClientError(f"{url}: HTTP {response.status}", response.status, response.body)
            raise FetchError(f"{url}: HTTP {response.status}")
        raise FetchError(f"{url}: gave up")  # pragma: no cover - loop always returns or raises

    def _backoff(self, attempt: int, trace: FetchTrace) -> bool:
        """Sleep before another attempt; False when the wait would pass the fetch's deadline."""
        delay = min(0.5 * 2**attempt, 30.0)
        if self.clock() + delay >= trace.deadline:
            return False
        time.sleep(delay)
        return True

    def _stream(self, url: str, headers: dict[str, str], allow_private: bool, trace: FetchTrace) -> Response:
        """Follow redirects by hand: each hop's URL is checked (scheme here, address at connect) first."""
        client, transport = self.client(allow_private)
        statuses: list[int] = []
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            trace.hops.append(current)
            try:
                with self._send(client, transport, current, headers) as resp:
                    location = resp.headers.get("location")
                    if resp.status_code in REDIRECT_STATUSES and location is not None:
                        statuses.append(resp.status_code)
                        current = next_hop(current, location)
                        continue
                    permanent = current if statuses and all(s in (301, 308) for s in statuses) else ""
                    body = b"" if resp.status_code == 304 else self._read_body(url, resp, trace)
                    return Response(
                        status=resp.status_code,
                        url=current,
                        body=body,
                        headers={k.lower(): v for k, v in resp.headers.items()},
                        permanent_url=permanent,
                    )
            except PrivateAddressError as exc:
                where = url if current == url else f"{url}: redirect to {current}"
                raise PrivateAddressError(f"{where}: {exc}") from None
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")

    @contextmanager
    def _send(self, client: httpx.Client, transport: httpx.BaseTransport, url: str, headers: dict[str, str]):
        """One request straight to the transport: httpx's client would parse (and choke on) a Location
        before we could check it, and keep cookies across hops; neither happens here."""
        request = client.build_request("GET", url, headers=headers)
        response = transport.handle_request(request)
        response.request = request
        try:
            yield response
        finally:
            response.close()

    def _read_body(self, url: str, resp: httpx.Response, trace: FetchTrace) -> bytes:
        """Raw bytes through our own decoders, each layer capped as it decodes (a nested bomb stops early)."""
        cap = self.config.max_bytes
        body = bytearray()
        raw = 0
        try:
            layers = Layers(resp.headers.get("content-encoding", ""), cap)
            trace.layers = layers.produced
            for chunk in resp.iter_raw():
                raw += len(chunk)
                if raw > cap:
                    raise TooLarge
                for piece in layers.feed(chunk):
                    body.extend(piece)
            for piece in layers.flush():
                body.extend(piece)
        except TooLarge:
            raise FetchError(f"{url}: response larger than {cap} bytes") from None
        except (zlib.error, ValueError) as exc:
            raise FetchError(f"{url}: cannot decode the response body ({exc})") from None
        return bytes(body)

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


def check_url(url: str, allow_private: bool, resolver: Resolver = system_resolver) -> None:
    """Only http(s); loopback, private and link-local hosts only where the source allows them. (A fetch
    does this check at connect time, on the address it then connects to; this is for early config checks.)"""
    check_scheme(url)
    if allow_private:
        return
    parts = urlsplit(url)
    try:
        addresses = [str(ipaddress.ip_address(parts.hostname))]
    except ValueError:
        try:
            addresses = resolver(parts.hostname, parts.port or 443)
        except (OSError, UnicodeError):
            raise FetchError(f"{url}: cannot resolve host {parts.hostname!r}") from None
    for address in addresses:
        if not is_public_address(address):
            raise FetchError(
                f"{url}: refusing to fetch private address {address} (set allow_private = true for this source)"
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
