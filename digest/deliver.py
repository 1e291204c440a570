"""Newsletter delivery over SMTP: one message per subscriber through a two-step ledger.

Each recipient's row is committed as `sending`, with the Message-ID, before the SMTP transaction and turned
`sent` after the server's 250. A crash or a dropped connection between the two leaves `sending`: the server may
or may not have the message. The next run sends it again under the same Message-ID (never a new one), so a
receiving system that already has it can drop the copy; a server that replied with a refusal had nothing, and
its row is removed. See docs/guarantees.md."""

from __future__ import annotations

import re
import secrets
import smtplib
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

from sqlalchemy.engine import Engine

from digest import store
from digest.config import Config, SmtpConfig
from digest.errors import DigestError
from digest.lock import exclusive, lock_path
from digest.normalize import slugify

ADDRESS_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def check_address(address: str) -> str:
    """A plain addr-spec (no display name, no CR/LF, no spaces), domain lower-cased; else DigestError."""
    address = address.strip()
    if len(address) > 254 or not ADDRESS_RE.match(address):
        raise DigestError(f"{address[:80]!r}: not an email address (expected e.g. reader@example.org)")
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def new_token() -> str:
    return secrets.token_hex(16)


@dataclass
class SendReport:
    total: int = 0
    sent: list[str] = field(default_factory=list)
    already: int = 0
    resent: list[str] = field(default_factory=list)  # were `sending`: sent again under their first Message-ID
    refused: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


@contextmanager
def smtp_connection(cfg: SmtpConfig) -> Iterator[smtplib.SMTP]:
    """A logged-in connection: implicit TLS (ssl), STARTTLS (starttls) or plain (none).

    TLS always verifies the server's certificate and host name, against the system's CAs plus `ca_file`."""
    where = f"SMTP {cfg.host}:{cfg.port}"
    conn = None
    try:
        context = tls_context(cfg) if cfg.security != "none" else None
        if cfg.security == "ssl":
            conn = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s, context=context)
        else:
            conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
        if cfg.security == "starttls":
            conn.ehlo()
            conn.starttls(context=context)
            conn.ehlo()
        if cfg.user:
            conn.login(cfg.user, cfg.password)
    except (OSError, smtplib.SMTPException) as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            raise DigestError(f"{where}: login refused for user {cfg.user!r}") from None
        raise DigestError(f"{where}: cannot connect ({exc})") from None
    try:
        yield conn
    finally:
        try:
            conn.quit()
        except (OSError, smtplib.SMTPException):
            conn.close()


def tls_context(cfg: SmtpConfig) -> ssl.SSLContext:
    """The client's TLS settings: certificate and host name checked (CERT_REQUIRED), TLS 1.2 at least."""
    context = ssl.create_default_context()
    if cfg.ca_file:
        context.load_verify_locations(cafile=cfg.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


Personalize = Callable[[str, str], EmailMessage]  # (address, token) -> message for that subscriber


def send_issue(
    engine: Engine,
    config: Config,
    issue: str,
    personalize: Personalize,
    *,
    dry_run_dir: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> SendReport:
    """Send `issue` to every subscriber the ledger does not list yet; a rerun resumes, never repeats."""
    from digest.write import write_bytes

    subs = store.subscribers(engine)
    if not subs:
        raise DigestError("no subscribers: add one with `digest subscribers add EMAIL`")
    report = SendReport(total=len(subs))
    if dry_run_dir is not None:
        folder = Path(dry_run_dir) / f"digest-{slugify(issue)}"
        for sub in subs:
            path = folder / f"{slugify(sub.email, 120)}.eml"
            write_bytes(path, bytes(personalize(sub.email, sub.token)))
            report.files.append(path)
        return report
    # One sender at a time: a `sending` row then always belongs to a run that stopped, never to one in flight.
    with exclusive(send_lock_path(engine, config), "newsletter send"):
        return _send(engine, config, issue, personalize, subs, report, progress)


def send_lock_path(engine: Engine, config: Config) -> Path:
    """Beside the ingest lock: `<db>.send.lock` for SQLite, else `<workspace>/send.lock`."""
    path = lock_path(engine.url.render_as_string(hide_password=False), config.workspace)
    return path.with_name(path.name.replace("ingest.lock", "send.lock"))


def _send(engine: Engine, config: Config, issue: str, personalize: Personalize, subs: list, report: SendReport,
          progress: Callable[[str, int, int], None] | None) -> SendReport:  # fmt: skip
    ledger = store.ledger(engine, issue)
    todo = [s for s in subs if ledger.get(s.email, ("",))[0] != "sent"]
    report.already = len(subs) - len(todo)
    if not todo:
        return report
    sender = parseaddr(config.newsletter.sender)[1] or "digest@localhost"
    with smtp_connection(config.smtp) as conn:
        for n, sub in enumerate(todo):
            if progress:
                progress("send", n, len(todo))
            msg = personalize(sub.email, sub.token)
            if sub.email in ledger:  # `sending`: a run stopped before the server's reply reached it
                if ledger[sub.email][1]:
                    msg.replace_header("Message-ID", ledger[sub.email][1])
                report.resent.append(sub.email)
            elif not store.record_sending(engine, issue, sub.email, msg["Message-ID"] or ""):
                report.already += 1  # another `newsletter --send` claimed this recipient meanwhile
                continue
            try:
                conn.send_message(msg, from_addr=sender, to_addrs=[sub.email])
            except smtplib.SMTPRecipientsRefused:
                if sub.email not in ledger:
                    store.forget_sending(engine, issue, sub.email)
                report.refused.append(sub.email)
                continue
            except (OSError, smtplib.SMTPException) as exc:
                if isinstance(exc, smtplib.SMTPResponseException) and sub.email not in ledger:
                    # The server answered no to this run's first attempt: nothing was delivered. A refused
                    # resend keeps its row: the earlier attempt may have arrived, so the Message-ID must stay.
                    store.forget_sending(engine, issue, sub.email)
                raise DigestError(
                    f"SMTP {config.smtp.host}:{config.smtp.port}: stopped at {sub.email} after sending "
                    f"{len(report.sent)} of {len(todo)} ({exc}); run the same command again to send the rest"
                ) from None
            store.mark_sent(engine, issue, sub.email)
            report.sent.append(sub.email)
    return report
