#!/usr/bin/env python3
"""console.py: the reference admin console, a small web application on the mcplink Python binding
that walks "Connecting your own MCP server" step by step (README: "The reference console").

  console.py serve --db DB --key-file KEY --accounts ACCOUNTS.json --cert PEM --cert-key PEM
                   [--bind 127.0.0.1] [--port 8443] [--public-url URL] [--allow-remote]
                   [--ca-file PEM] [--policies DIR] [--library PATH] [--log-level LEVEL]
  console.py passwd --accounts ACCOUNTS.json TENANT USER     (the password is read from stdin)
  console.py demo DIR                                         (a demo database and accounts)

It serves HTTPS only, on a loopback address unless --allow-remote, and prints one JSON line when
it is ready: {"url": ..., "pid": ...}. It serves the OAuth redirect URI (/oauth/callback) and the
engine's Client ID Metadata Document (/oauth/client-metadata.json) at its own URL.
"""
from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
try:
    import mcplink
except ImportError:                                  # not installed: the binding of this checkout
    sys.path.insert(0, str(HERE.parents[1] / "bindings" / "python"))
    import mcplink

from pages import App                                # noqa: E402
from web import Accounts, Server, is_loopback, make_handler, tls_context  # noqa: E402

log = logging.getLogger("console")


def serve(a: argparse.Namespace) -> int:
    if not is_loopback(a.bind) and not a.allow_remote:
        print(f"console: refusing to listen on {a.bind}: not a loopback address (add --allow-remote "
              "to serve other machines, behind your own access control)", file=sys.stderr)
        return 2
    if not os.path.exists(a.accounts):
        print(f"console: no accounts file {a.accounts} (create accounts with: console.py passwd)", file=sys.stderr)
        return 2
    ctx = tls_context(a.cert, a.cert_key)
    srv = Server((a.bind, a.port), make_handler(None), ctx)
    port = srv.server_address[1]
    host = f"[{a.bind}]" if ":" in a.bind else a.bind
    origin = (a.public_url or f"https://{host}:{port}").rstrip("/")
    if not origin.startswith("https://"):
        print("console: --public-url must be an https URL", file=sys.stderr)
        return 2
    engine = mcplink.Engine(db=a.db, key_file=a.key_file, ca_file=a.ca_file, policies=a.policies,
                            library=a.library, log_level=a.log_level,
                            oauth_redirect_uri=f"{origin}/oauth/callback",
                            oauth_client_metadata_url=f"{origin}/oauth/client-metadata.json")
    app = App(engine, Accounts(a.accounts), origin)
    srv.RequestHandlerClass = make_handler(app)

    def stop(*_: object) -> None:
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if a.parent_pid:
        def watch() -> None:
            while True:
                try:
                    os.kill(a.parent_pid, 0)
                except ProcessLookupError:
                    stop()
                    return
                threading.Event().wait(1)
        threading.Thread(target=watch, daemon=True).start()
    print(json.dumps({"url": origin, "pid": os.getpid()}), flush=True)
    log.info("serving %s", origin)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        engine.close()
    return 0


def passwd(a: argparse.Namespace) -> int:
    pw = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    try:
        Accounts(a.accounts).set_password(a.tenant, a.user, pw)
    except ValueError as e:
        print(f"console: {e}", file=sys.stderr)
        return 2
    return 0


def demo(a: argparse.Namespace) -> int:
    """A demo database: tenant acme with ann (admin), alice and bob (members), loopback MCP servers
    allowed (for the fixture servers), random passwords written to DIR/passwords.txt (mode 0600)."""
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    with mcplink.Engine(db=str(d / "console.db"), key_file=str(d / "console.key"), library=a.library) as e:
        s = e.as_system()
        s.settings.set(allow_private_urls=True)
        s.tenant.create(name="acme")
        s.user.create(tenant="acme", name="ann", role="admin")
        s.user.create(tenant="acme", name="alice", role="member")
        s.user.create(tenant="acme", name="bob", role="member")
    acc = Accounts(str(d / "accounts.json"))
    lines = []
    for user in ("ann", "alice", "bob"):
        pw = secrets.token_urlsafe(12)
        acc.set_password("acme", user, pw)
        lines.append(f"acme {user} {pw}")
    fd = os.open(d / "passwords.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="console.py", description="mcplink reference admin console")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="serve the console over HTTPS")
    s.add_argument("--db", required=True)
    s.add_argument("--key-file", required=True)
    s.add_argument("--accounts", required=True)
    s.add_argument("--cert", required=True, help="the server certificate (PEM)")
    s.add_argument("--cert-key", required=True, help="its private key (PEM)")
    s.add_argument("--bind", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8443)
    s.add_argument("--public-url", help="the https origin browsers use (default https://BIND:PORT)")
    s.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --bind")
    s.add_argument("--ca-file", help="extra CA bundle for the engine's outbound HTTPS")
    s.add_argument("--policies")
    s.add_argument("--library", help="path of libmcplink.so")
    s.add_argument("--log-level", default="warn", choices=["debug", "info", "warn", "error"])
    s.add_argument("--parent-pid", type=int, help="exit when this process is gone (tests)")
    pw = sub.add_parser("passwd", help="set a sign-in password (read from stdin)")
    pw.add_argument("--accounts", required=True)
    pw.add_argument("tenant")
    pw.add_argument("user")
    dm = sub.add_parser("demo", help="create a demo database and accounts in DIR")
    dm.add_argument("dir")
    dm.add_argument("--library")
    a = p.parse_args(argv)
    level = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}
    logging.basicConfig(level=level.get(getattr(a, "log_level", "warn"), logging.WARNING),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return {"serve": serve, "passwd": passwd, "demo": demo}[a.cmd](a)
    except (mcplink.Error, mcplink.LibraryNotFound, OSError) as e:
        print(f"console: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
