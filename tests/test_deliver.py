"""Newsletter delivery to a real SMTP server (aiosmtpd on 127.0.0.1): parts, headers, links, ledger, resume."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from html import unescape

import pytest
from aiosmtpd.controller import Controller

from digest.cli import main
from tests.conftest import ROOT
from tests.publish_data import BASE, WEEK, assert_inert, elements, published

PEOPLE = [f"reader{n}@example.org" for n in range(5)]


class Mailbox:
    """An SMTP handler that keeps what it accepted; it can refuse or hold messages after the first N."""

    def __init__(self):
        self.accepted: list[tuple[list[str], bytes]] = []
        self.refuse_after: int | None = None
        self.hold_after: int | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.drop_after_data = False  # keep the message, then close the connection without a reply
        self.kill: tuple[int, int, float] | None = None  # (pid, at the Nth message, seconds after its reply)
        self.killed = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        n = len(self.accepted)
        if self.drop_after_data:
            self.accepted.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
            server.transport.abort()
            return "250 OK"  # never reaches the client
        if self.kill is not None and n + 1 == self.kill[1]:
            self.accepted.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
            pid, _, delay = self.kill
            if delay < 0:  # before the 250 leaves: the server has it, the client never hears so
                os.kill(pid, signal.SIGKILL)
            else:  # after the 250, somewhere in the client's bookkeeping or its next transaction
                asyncio.get_running_loop().call_later(delay, os.kill, pid, signal.SIGKILL)
            self.killed.set()
            return "250 OK"
        if self.hold_after is not None and n >= self.hold_after:
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
            return "451 4.3.0 held and dropped"
        if self.refuse_after is not None and n >= self.refuse_after:
            return "451 4.3.0 Try again later"
        self.accepted.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 OK"

    def count(self, address: str) -> int:
        return sum(address in rcpt for rcpt, _ in self.accepted)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    box.port = port
    yield box
    box.release.set()
    controller.stop()


@pytest.fixture
def cfg(httpserver, tmp_path, smtp, db):
    extra = f"""
[newsletter]
sender = "Digest <digest@digest.test>"
unsubscribe_mailto = "mailto:leave@digest.test"
unsubscribe_url = "https://digest.test/unsubscribe"
[smtp]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
"""
    config = published(httpserver, tmp_path, extra=extra)
    return config


def cli(runner, cfg, *args):
    return runner.invoke(main, ["--config", str(cfg), *args])


def subscribe(runner, cfg, people=PEOPLE):
    result = cli(runner, cfg, "subscribers", "add", *people)
    assert result.exit_code == 0, result.output


def test_newsletter_arrives_with_parts_headers_and_absolute_links(runner, cfg, smtp, db):
    subscribe(runner, cfg, PEOPLE[:2])
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 0, result.output
    assert "Sent 2, already sent 0, of 2 subscribers" in result.output
    assert sorted(r for rcpt, _ in smtp.accepted for r in rcpt) == PEOPLE[:2]
    tokens = dict(db.rows("SELECT email, token FROM subscriber"))
    ids = set()
    for rcpt, raw in smtp.accepted:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["To"] == rcpt[0]
        assert msg["Subject"].startswith(f"Digest, week {WEEK}: 4 findings in ")
        assert msg["Date"] and msg["Message-ID"]
        ids.add(msg["Message-ID"])
        token = tokens[rcpt[0]]
        unsub = msg["List-Unsubscribe"]
        assert f"<mailto:leave@digest.test?subject=unsubscribe%20{token}>" in unsub
        assert f"<https://digest.test/unsubscribe?u={token}>" in unsub
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["List-Id"] == '"Test Digest" <newsletter.digest.test>'  # RFC 2919
        # Nothing from the hostile title became a header.
        assert msg["Bcc"] is None and msg["X-Injected"] is None
        assert all("\r" not in str(v) and "\n" not in str(v) for v in msg.values())
        assert [p.get_content_type() for p in msg.walk() if not p.is_multipart()] == ["text/plain", "text/html"]
        html = msg.get_body(("html",)).get_content()
        text = msg.get_body(("plain",)).get_content()
        hrefs = [a["href"] for tag, a in elements(html) if tag == "a"]
        assert len(hrefs) >= 6
        # Every link is absolute: the site's, or a finding's own abstract, PDF or post (stored http(s) URLs).
        own = {u for row in db.rows("SELECT url, pdf_url FROM item") for u in row if u}
        assert all(h.startswith((BASE, "mailto:")) or h in own for h in hrefs), hrefs
        assert any(h in own for h in hrefs)
        assert f"{BASE}unsubscribe?u={token}" in hrefs and f"{BASE}unsubscribe?u={token}" in text
        assert any(re.match(rf"{BASE}items/\d+-fastspec", h) for h in hrefs)
        assert "style=" in html  # CSS inlined
        titles = re.findall(r"<title>(.*?)</title>", html, re.S)
        assert [unescape(t) for t in titles] == [msg["Subject"]], titles  # the HTML part has a <title>
        assert_inert(html)
        assert "FastSpec" in text and "2.5x" in text
    assert len(ids) == 2  # one Message-ID per recipient
    assert db.one("SELECT count(*) FROM sendledger WHERE issue = :w", w=WEEK) == 2


def test_sending_twice_delivers_one_copy(runner, cfg, smtp, db):
    subscribe(runner, cfg)
    assert cli(runner, cfg, "newsletter", "--week", WEEK, "--send").exit_code == 0
    again = cli(runner, cfg, "newsletter", "--week", "2026-w48", "--send")
    assert again.exit_code == 0, again.output
    assert "Sent 0, already sent 5, of 5 subscribers" in again.output
    assert [smtp.count(p) for p in PEOPLE] == [1] * 5
    # A new subscriber gets this issue; the others still do not get a second copy.
    subscribe(runner, cfg, ["late@example.org"])
    assert "Sent 1, already sent 5" in cli(runner, cfg, "newsletter", "--week", WEEK, "--send").output
    assert [smtp.count(p) for p in [*PEOPLE, "late@example.org"]] == [1] * 6


def test_server_refusing_halfway_then_resume_sends_the_rest_once(runner, cfg, smtp, db):
    subscribe(runner, cfg)
    smtp.refuse_after = 2
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 1
    assert "after sending 2 of 5" in result.output and "run the same command again" in result.output
    assert len(smtp.accepted) == 2
    assert db.one("SELECT count(*) FROM sendledger") == 2
    smtp.refuse_after = None
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 0, result.output
    assert "Sent 3, already sent 2, of 5" in result.output
    assert [smtp.count(p) for p in PEOPLE] == [1] * 5


def test_killed_send_resumes_and_delivers_the_rest_exactly_once(runner, cfg, smtp, db):
    """A real `digest newsletter --send` process is SIGKILLed while the server holds its 3rd message."""
    subscribe(runner, cfg)
    smtp.hold_after = 2
    env = {**os.environ, "DIGEST_DB": db.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(cfg), "newsletter", "--week", WEEK, "--send"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert smtp.holding.wait(60), proc.communicate(timeout=5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    smtp.hold_after = None
    smtp.release.set()
    time.sleep(0.1)
    assert len(smtp.accepted) == 2 and db.one("SELECT count(*) FROM sendledger WHERE status = 'sent'") == 2
    assert db.one("SELECT count(*) FROM sendledger WHERE status = 'sending'") == 1  # the held one
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 0, result.output
    assert "Sent 3, already sent 2, of 5 subscribers (1 again under their first Message-ID)" in result.output
    assert [smtp.count(p) for p in PEOPLE] == [1] * 5


def message_ids(box: Mailbox) -> dict[str, list[str]]:
    """Every delivery's Message-ID, by recipient."""
    ids: dict[str, list[str]] = {}
    for rcpt, raw in box.accepted:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        ids.setdefault(rcpt[0], []).append(msg["Message-ID"])
    return ids


def test_server_dropping_the_connection_after_data_gets_the_same_message_id_again(runner, cfg, smtp, db):
    subscribe(runner, cfg, PEOPLE[:2])
    smtp.drop_after_data = True  # accepted, then the connection is gone before the 250
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 1 and "run the same command again" in result.output
    [(rcpt, _)] = smtp.accepted
    first = message_ids(smtp)[rcpt[0]]
    assert db.rows("SELECT email, status, message_id FROM sendledger") == [(rcpt[0], "sending", first[0])]
    smtp.drop_after_data, smtp.refuse_after = False, 0  # the resend is refused with a reply: the row stays
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 1 and len(smtp.accepted) == 1
    assert db.rows("SELECT email, status, message_id FROM sendledger") == [(rcpt[0], "sending", first[0])]
    smtp.refuse_after = None
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 0, result.output
    assert "Sent 2, already sent 0, of 2 subscribers (1 again under their first Message-ID)" in result.output
    ids = message_ids(smtp)
    assert ids[rcpt[0]] == first * 2  # a second copy, under the same Message-ID: a provider keeps one
    assert all(len(set(v)) == 1 for v in ids.values()) and sorted(ids) == PEOPLE[:2]
    assert db.one("SELECT count(*) FROM sendledger WHERE status = 'sent'") == 2
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert "Sent 0, already sent 2, of 2" in result.output and len(smtp.accepted) == 3


def test_sigkill_at_random_points_of_a_200_subscriber_send_gives_one_message_id_per_reader(runner, cfg, smtp, db):
    """A real `digest newsletter --send` process, SIGKILLed four times at random points (seeded): just before
    the server's 250 leaves, or up to 20 ms after it. Each rerun resumes; every reader ends with one
    Message-ID, and a second copy (same Message-ID) only where a kill fell between the 250 and the ledger."""
    import random

    readers = [f"r{n:03d}@example.org" for n in range(200)]
    subscribe(runner, cfg, readers)
    rng = random.Random(17)
    argv = [sys.executable, "-m", "digest", "--config", str(cfg), "newsletter", "--week", WEEK, "--send"]
    env = {**os.environ, "DIGEST_DB": db.url}
    kills = 0
    for _ in range(4):
        at = len(smtp.accepted) + rng.randint(1, 40)
        delay = rng.choice([-1.0, rng.uniform(0, 0.02)])
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        smtp.killed.clear()
        smtp.kill = (proc.pid, at, delay)
        try:
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        smtp.kill = None
        assert smtp.killed.is_set() and proc.returncode == -signal.SIGKILL, proc.communicate()
        kills += 1
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    ids = message_ids(smtp)
    assert sorted(ids) == readers  # nobody missed
    assert all(len(set(v)) == 1 for v in ids.values()), {k: v for k, v in ids.items() if len(set(v)) > 1}
    copies = sum(len(v) - 1 for v in ids.values())
    assert copies <= kills
    assert db.one("SELECT count(*) FROM sendledger WHERE status = 'sent'") == 200


def test_a_second_sender_stops_at_once_and_sends_nothing(runner, cfg, smtp, db):
    """While one `newsletter --send` holds the send lock, another stops at once: a `sending` row of a live run
    is never taken for a crashed one and resent."""
    from digest import store
    from digest.config import load_config
    from digest.deliver import send_lock_path
    from digest.lock import exclusive

    subscribe(runner, cfg, PEOPLE[:1])
    engine = store.open_engine(db.url)
    with exclusive(send_lock_path(engine, load_config(cfg))):
        result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    engine.dispose()
    assert result.exit_code == 1 and "another newsletter send is already running" in result.output
    assert smtp.accepted == [] and db.one("SELECT count(*) FROM sendledger") == 0


def test_dry_run_writes_one_eml_per_subscriber_and_sends_nothing(runner, cfg, smtp, db, tmp_path):
    subscribe(runner, cfg, PEOPLE[:3])
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send", "--dry-run", "--out", str(tmp_path / "dry"))
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "dry" / f"digest-{WEEK.lower()}").glob("*.eml"))
    assert len(files) == 3
    tos = sorted(email.message_from_bytes(f.read_bytes(), policy=email.policy.default)["To"] for f in files)
    assert tos == PEOPLE[:3]
    assert smtp.accepted == [] and db.one("SELECT count(*) FROM sendledger") == 0


def test_subscribers_add_remove_list_and_bad_input(runner, cfg, db):
    assert cli(runner, cfg, "subscribers", "add", "a@example.org", "b@example.org").exit_code == 0
    assert "already subscribed: a@example.org" in cli(runner, cfg, "subscribers", "add", "a@example.org").output
    assert cli(runner, cfg, "subscribers", "list").output.split() == ["a@example.org", "b@example.org"]
    assert cli(runner, cfg, "subscribers", "remove", "a@example.org").exit_code == 0
    assert cli(runner, cfg, "subscribers", "list").output.split() == ["b@example.org"]
    for bad in ("evil@example.org\r\nBcc: x@evil.test", "no-at-sign", "Name <x@example.org>"):
        result = cli(runner, cfg, "subscribers", "add", bad)
        assert result.exit_code == 1 and result.output.startswith("Error: ") and "not an email address" in result.output
    missing = cli(runner, cfg, "subscribers", "remove", "nobody@example.org")
    assert missing.exit_code == 1 and "not subscribed" in missing.output
    assert db.one("SELECT count(*) FROM subscriber") == 1


def test_send_without_subscribers_or_server_fails_in_one_line(runner, cfg, smtp, db, monkeypatch):
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 1 and "no subscribers" in result.output
    subscribe(runner, cfg, PEOPLE[:1])
    monkeypatch.setenv("DIGEST_SMTP_PORT", str(free_port()))  # env wins over the file; nothing listens there
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 1 and "cannot connect" in result.output and "Traceback" not in result.output
    assert smtp.accepted == []


def test_empty_week_and_bad_smtp_config_are_refused(runner, cfg, smtp, db, monkeypatch):
    subscribe(runner, cfg, PEOPLE[:1])
    result = cli(runner, cfg, "newsletter", "--week", "2026-W02", "--send")
    assert result.exit_code == 1 and "no findings that week" in result.output
    monkeypatch.setenv("DIGEST_SMTP_SECURITY", "tls")
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 1 and "field 'security' must be one of starttls, ssl, none" in result.output
    monkeypatch.setenv("DIGEST_SMTP_SECURITY", "none")
    monkeypatch.setenv("DIGEST_SMTP_PORT", "not-a-port")
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 1 and "DIGEST_SMTP_PORT: must be an integer" in result.output
    assert smtp.accepted == []


# --- TLS: STARTTLS and implicit SSL against a server whose certificate comes from a CA made at test time ---

USER, PASSWORD = "digest-sender", "s3cret pass"
# aiosmtpd warns about AUTH without STARTTLS even when the whole connection is TLS (implicit SSL).
TLS_WARNING = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


class TlsServer:
    """aiosmtpd on 127.0.0.1 with a trustme certificate, requiring TLS and a login (user/password above)."""

    def __init__(self, tmp_path, mode: str):
        import ssl

        import trustme
        from aiosmtpd.smtp import AuthResult

        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(server_ctx)
        self.ca_file = tmp_path / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.box = Mailbox()
        self.logins: list[tuple[bytes, bool]] = []

        def authenticate(server, session, envelope, mechanism, auth_data):
            ok = (auth_data.login, auth_data.password) == (USER.encode(), PASSWORD.encode())
            self.logins.append((auth_data.login, ok))
            return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

        self.port = free_port()
        if mode == "ssl":  # the whole connection is TLS; aiosmtpd's AUTH-needs-TLS check only knows STARTTLS
            tls = {"ssl_context": server_ctx, "auth_require_tls": False}
        else:
            tls = {"tls_context": server_ctx, "require_starttls": True}
        self.controller = Controller(
            self.box, hostname="127.0.0.1", port=self.port, authenticator=authenticate, auth_required=True, **tls
        )
        self.controller.start()


@pytest.fixture(params=["starttls", "ssl"])
def tls_cfg(request, httpserver, tmp_path, db, monkeypatch):
    server = TlsServer(tmp_path, request.param)
    extra = f"""
[newsletter]
sender = "Digest <digest@digest.test>"
[smtp]
host = "127.0.0.1"
port = {server.port}
security = "{request.param}"
ca_file = "{server.ca_file.name}"
timeout_s = 10
"""
    monkeypatch.setenv("DIGEST_SMTP_USER", USER)  # the login comes from the environment, not the file
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", PASSWORD)
    config = published(httpserver, tmp_path, extra=extra)
    yield config, server
    server.controller.stop()


@TLS_WARNING
def test_tls_send_verifies_the_certificate_and_logs_in(runner, tls_cfg, db):
    cfg, server = tls_cfg
    assert "password" not in cfg.read_text()
    subscribe(runner, cfg, PEOPLE[:2])
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 0, result.output
    assert sorted(r for rcpt, _ in server.box.accepted for r in rcpt) == PEOPLE[:2]
    assert server.logins == [(USER.encode(), True)]
    msg = email.message_from_bytes(server.box.accepted[0][1], policy=email.policy.default)
    assert msg["Subject"].startswith(f"Digest, week {WEEK}:") and msg.get_body(("html",)) is not None
    assert db.one("SELECT count(*) FROM sendledger") == 2


@TLS_WARNING
def test_tls_refuses_a_wrong_password_and_an_unknown_certificate(runner, tls_cfg, db, monkeypatch, tmp_path):
    import trustme

    cfg, server = tls_cfg
    subscribe(runner, cfg, PEOPLE[:1])
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "wrong")
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 1 and f"login refused for user '{USER}'" in result.output
    assert server.logins and not any(ok for _, ok in server.logins)  # smtplib tries PLAIN, then LOGIN
    attempts = len(server.logins)
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("DIGEST_SMTP_CA_FILE", str(tmp_path / "missing.pem"))
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 1 and "field 'ca_file': no such file" in result.output
    # A CA that did not sign the server's certificate: the client refuses the server before logging in.
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    monkeypatch.setenv("DIGEST_SMTP_CA_FILE", str(tmp_path / "other-ca.pem"))
    result = cli(runner, cfg, "newsletter", "--week", WEEK, "--send")
    assert result.exit_code == 1 and "certificate verify failed" in result.output, result.output
    assert "Traceback" not in result.output and len(server.logins) == attempts
    assert server.box.accepted == [] and db.one("SELECT count(*) FROM sendledger") == 0
