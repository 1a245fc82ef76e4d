"""web.py: the console's small web layer on the standard library: HTTPS server, requests and
responses, sign-in accounts, sessions and CSRF tokens, security headers.

A reference host keeps this deliberately small. A real host replaces the sign-in (accounts.json
with scrypt hashes) with its own identity provider and the in-memory sessions with its own.
"""
from __future__ import annotations

import hashlib
import hmac
import html
import http.server
import ipaddress
import json
import logging
import os
import secrets
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("console")

SESSION_COOKIE = "__Host-console"     # __Host-: Secure, Path=/, no Domain (a browser rule)
IDLE_S = 30 * 60
ABSOLUTE_S = 8 * 3600
MAX_BODY = 256 * 1024
MAX_SESSIONS = 10000


def h(v: Any) -> str:
    """HTML-escapes any value (None as the empty string)."""
    return "" if v is None else html.escape(str(v), quote=True)


# ---- accounts: who may sign in (the engine decides what they may do) --------------------------

class Accounts:
    """Sign-in accounts of the reference console: ``tenant/user`` -> scrypt hash, in a JSON file
    (mode 0600). The engine's user of that name in that tenant is the actor; their role (admin or
    member) is the engine's."""

    N, R, P = 2 ** 14, 8, 1

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            with open(self.path) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    @classmethod
    def _hash(cls, password: str, salt: bytes) -> bytes:
        return hashlib.scrypt(password.encode(), salt=salt, n=cls.N, r=cls.R, p=cls.P, dklen=32)

    def set_password(self, tenant: str, user: str, password: str) -> None:
        if len(password) < 8:
            raise ValueError("a password needs at least 8 characters")
        salt = secrets.token_bytes(16)
        with self.lock:
            data = self._load()
            data[f"{tenant}/{user}"] = {"salt": salt.hex(), "scrypt": self._hash(password, salt).hex()}
            tmp = f"{self.path}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=1)
            os.replace(tmp, self.path)

    # a fixed dummy hash so an unknown account costs the same as a wrong password
    _DUMMY = (b"\0" * 16, b"\0" * 32)

    def check(self, tenant: str, user: str, password: str) -> bool:
        rec = self._load().get(f"{tenant}/{user}")
        salt, want = (bytes.fromhex(rec["salt"]), bytes.fromhex(rec["scrypt"])) if rec else self._DUMMY
        got = self._hash(password, salt)
        return rec is not None and hmac.compare_digest(got, want)


# ---- sessions ----------------------------------------------------------------------------------

@dataclass
class Session:
    sid: str
    csrf: str
    created: float
    seen: float
    tenant: str | None = None
    user: str | None = None
    role: str | None = None
    flashes: list[dict[str, Any]] = field(default_factory=list)
    # tool calls that wait for this user's answers (input_required), by a random id: the engine's
    # continuation token stays here, never in a page
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def signed_in(self) -> bool:
        return self.user is not None


class Sessions:
    """Server-side sessions, referenced by a random id in an HttpOnly, Secure, SameSite=Lax cookie.
    Lax (not Strict) so that the browser's return from the authorization server (a top-level GET
    to the OAuth redirect URI) carries the session; every state change is a POST with a CSRF token."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_id: dict[str, Session] = {}

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        now = time.time()
        with self.lock:
            s = self.by_id.get(sid)
            if s is None:
                return None
            if now - s.seen > IDLE_S or now - s.created > ABSOLUTE_S:
                del self.by_id[sid]
                return None
            s.seen = now
            return s

    def new(self) -> Session:
        now = time.time()
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        with self.lock:
            for k in [k for k, v in self.by_id.items() if now - v.seen > IDLE_S]:
                del self.by_id[k]
            if len(self.by_id) >= MAX_SESSIONS:     # a flood of sign-in pages: drop the oldest anonymous
                anon = sorted((v.seen, k) for k, v in self.by_id.items() if not v.signed_in)
                for _, k in anon[:len(anon) // 2 + 1]:
                    del self.by_id[k]
            self.by_id[s.sid] = s
        return s

    def drop(self, s: Session) -> None:
        with self.lock:
            self.by_id.pop(s.sid, None)


# ---- requests and responses --------------------------------------------------------------------

@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: Any
    target: str                          # path and query as received
    session: Session | None
    new_session: Session | None = None   # set by a handler that (re)creates the session

    @property
    def admin(self) -> bool:
        return self.session is not None and self.session.role == "admin"


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def redirect(location: str) -> Response:
    """303 See Other: after a POST, the browser GETs the page (no resubmission)."""
    return Response(303, b"", headers=[("Location", location)])


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    # the OAuth callback URL carries code and state: never sent to another origin (same-origin
    # rather than no-referrer, which would make browsers send "Origin: null" on our own forms)
    ("Referrer-Policy", "same-origin"),
    ("Strict-Transport-Security", "max-age=31536000"),
    ("Cache-Control", "no-store"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]


def make_handler(app: Any) -> type[http.server.BaseHTTPRequestHandler]:
    """The request handler class for ``app`` (``app.dispatch(Request) -> Response``)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "mcplink-console"

        def version_string(self) -> str:
            return self.server_version
        timeout = 30
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # TLS handshake here, on this request's thread, not in the accept loop
            self.request.settimeout(self.timeout)
            self.request.do_handshake()

        def log_message(self, fmt: str, *args: Any) -> None:
            pass  # see log_request: never the query string (OAuth codes, state)

        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            path = urllib.parse.urlsplit(self.path).path
            log.info("%s %s %s", self.command, path[:200], code)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            try:
                resp = app.handle(self)
            except Exception:  # noqa: BLE001 -- a bug must not leak details to the browser
                log.exception("request failed")
                resp = Response(500, b"internal error", "text/plain; charset=utf-8")
            self.send_response(resp.status)
            if resp.status >= 400:
                # the request body may be unread: never reuse this connection
                self.close_connection = True
                self.send_header("Connection", "close")
            for k, v in SECURITY_HEADERS + resp.headers:
                self.send_header(k, v)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)

    return Handler


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, addr: tuple[str, int], handler: type, ctx: ssl.SSLContext) -> None:
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        super().__init__(addr, handler)
        self.socket = ctx.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.info("connection from %s ended with an error", client_address[0])


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_form(handler: http.server.BaseHTTPRequestHandler) -> dict[str, str]:
    n = int(handler.headers.get("Content-Length") or 0)
    if n > MAX_BODY:
        raise HttpError(413, "request too large")
    ctype = (handler.headers.get("Content-Type") or "").split(";")[0].strip()
    body = handler.rfile.read(n) if n else b""
    if ctype != "application/x-www-form-urlencoded":
        raise HttpError(415, "forms only")
    try:
        pairs = urllib.parse.parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200,
                                       strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise HttpError(400, "malformed form") from None
    return dict(pairs)


Route = tuple[str, str, Callable[..., Response], str]   # method, pattern, handler, who
