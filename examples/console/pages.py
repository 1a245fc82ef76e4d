"""pages.py: the console's pages and actions, one per step of "Connecting your own MCP server"
(docs: ../../README.md, "The reference console"). Every engine call goes through the mcplink
binding as the signed-in user; the engine decides what that user may do.
"""
from __future__ import annotations

import hmac
import json
import logging
import math
import re
import secrets
import time
import urllib.parse
from typing import Any, Callable

import mcplink
from web import (SESSION_COOKIE, Accounts, HttpError, Request, Response, Session, Sessions, h,
                 parse_form, redirect)

log = logging.getLogger("console")

AUTH_LABELS = {"none": "None", "api_key": "API key", "oauth": "OAuth 2.0"}
# The spec's Validate outcomes, in its own words (spec: "Validating a connection").
VALIDATE_STATUSES = [
    ("OK", "Server is reachable and authentication is working."),
    ("Unauthorized", "Server is reachable but the provided credentials were rejected. Check your "
                     "API key or OAuth configuration."),
    ("User not authenticated", "The server uses OAuth and the current user has not completed the "
                               "OAuth flow yet."),
    ("Server URL not set", "No URL has been configured on the server record."),
    ("Failed", "The server could not be reached. Verify the URL is correct and publicly accessible."),
]
CLASSIFICATION_RULE = ("An assistant in a space can use an MCP server only if the server's security "
                       "classification level is at least the level the space requires. A server "
                       "without a classification can only serve personal assistants.")
MAX_SHOWN = 64 * 1024
MAX_PENDING = 20                 # questions a session keeps waiting for answers


def when(ms: Any) -> str:
    if not isinstance(ms, (int, float)):
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def pretty(v: Any) -> str:
    s = json.dumps(v, indent=2, ensure_ascii=False, sort_keys=True)
    return s if len(s) <= MAX_SHOWN else s[:MAX_SHOWN] + "\n… (cut at 64 KB)"


def error_html(e: dict[str, Any]) -> str:
    parts = [f'<code class="code">{h(e.get("code"))}</code> {h(e.get("message"))}']
    if e.get("field"):
        parts.append(f' <span class="muted">(field <code>{h(e["field"])}</code>)</span>')
    if e.get("reason"):
        parts.append(f' <span class="muted">(reason <code>{h(e["reason"])}</code>)</span>')
    return "".join(parts)


def err_dict(e: mcplink.Error) -> dict[str, Any]:
    return {"code": e.code, "message": e.message, "field": e.field, "reason": e.reason}


class App:
    """Routes requests to pages and actions; owns sessions, the engine and the sign-in accounts."""

    def __init__(self, engine: mcplink.Engine, accounts: Accounts, origin: str) -> None:
        self.engine = engine
        self.accounts = accounts
        self.origin = origin                                    # https://host:port
        self.host = urllib.parse.urlsplit(origin).netloc
        self.sessions = Sessions()
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Response], str]] = []
        for method, pattern, fn, who in [
            ("GET", r"/", lambda r: redirect("/servers"), "user"),
            ("GET", r"/login", self.login_page, "anyone"),
            ("POST", r"/login", self.login, "anyone"),
            ("POST", r"/logout", self.logout, "user"),
            ("GET", r"/static/console\.css", self.css, "anyone"),
            ("GET", r"/oauth/client-metadata\.json", self.client_metadata, "anyone"),
            ("GET", r"/oauth/callback", self.oauth_callback, "callback"),
            ("GET", r"/servers", self.servers_page, "user"),
            ("POST", r"/servers", self.server_create, "admin"),
            ("GET", r"/servers/(?P<sid>[A-Za-z0-9_-]+)", self.server_page, "user"),
            ("POST", r"/servers/(?P<sid>[A-Za-z0-9_-]+)/update", self.server_update, "admin"),
            ("POST", r"/servers/(?P<sid>[A-Za-z0-9_-]+)/oauth", self.server_oauth, "admin"),
            ("POST", r"/servers/(?P<sid>[A-Za-z0-9_-]+)/refresh", self.server_refresh, "admin"),
            ("POST", r"/servers/(?P<sid>[A-Za-z0-9_-]+)/discover", self.server_discover, "admin"),
            ("POST", r"/servers/(?P<sid>[A-Za-z0-9_-]+)/approve", self.tool_approve, "admin"),
            ("POST", r"/servers/(?P<sid>[A-Za-z0-9_-]+)/delete", self.server_delete, "admin"),
            ("POST", r"/servers/(?P<sid>[A-Za-z0-9_-]+)/validate", self.server_validate, "user"),
            ("POST", r"/servers/(?P<sid>[A-Za-z0-9_-]+)/connect", self.oauth_connect, "user"),
            ("POST", r"/servers/(?P<sid>[A-Za-z0-9_-]+)/disconnect", self.oauth_disconnect, "user"),
            ("GET", r"/tools", self.tools_page, "user"),
            ("POST", r"/tools", self.tools_set, "admin"),
            ("GET", r"/spaces", self.spaces_page, "user"),
            ("POST", r"/spaces", self.space_create, "admin"),
            ("POST", r"/classifications", self.classification_set, "admin"),
            ("GET", r"/assistants", self.assistants_page, "user"),
            ("POST", r"/assistants", self.assistant_create, "user"),
            ("GET", r"/assistants/(?P<aid>[A-Za-z0-9_-]+)", self.assistant_page, "user"),
            ("POST", r"/assistants/(?P<aid>[A-Za-z0-9_-]+)/attach", self.assistant_attach, "user"),
            ("POST", r"/assistants/(?P<aid>[A-Za-z0-9_-]+)/detach", self.assistant_detach, "user"),
            ("POST", r"/assistants/(?P<aid>[A-Za-z0-9_-]+)/call", self.tool_call, "user"),
            ("POST", r"/assistants/(?P<aid>[A-Za-z0-9_-]+)/continue", self.tool_continue, "user"),
        ]:
            self.routes.append((method, re.compile(pattern + r"\Z"), fn, who))

    # ---- dispatch and its checks -----------------------------------------------------------

    def handle(self, handler: Any) -> Response:
        if handler.headers.get("Host") != self.host:
            # DNS rebinding and confused proxies: only our own origin is served
            return Response(421, b"wrong host", "text/plain; charset=utf-8")
        split = urllib.parse.urlsplit(handler.path)
        cookies = _cookies(handler.headers.get("Cookie"))
        req = Request(handler.command, split.path, dict(urllib.parse.parse_qsl(split.query)), {},
                      handler.headers, handler.path, self.sessions.get(cookies.get(SESSION_COOKIE)))
        try:
            resp = self._route(req, handler)
        except HttpError as e:
            resp = self.page(req, "Error", f'<p class="error">{h(e)}</p>', status=e.status)
        if req.new_session is not None:
            resp.headers.append(("Set-Cookie", f"{SESSION_COOKIE}={req.new_session.sid}; Path=/; Secure; "
                                               f"HttpOnly; SameSite=Lax"))
        return resp

    def _route(self, req: Request, handler: Any) -> Response:
        allowed = []
        for method, pattern, fn, who in self.routes:
            m = pattern.match(req.path)
            if not m:
                continue
            allowed.append(method)
            if method != req.method:
                continue
            if method == "POST":
                self._check_post(req, handler)
            s = req.session
            if who in ("user", "admin") and (s is None or not s.signed_in):
                if method == "GET":
                    return redirect("/login")
                raise HttpError(403, "sign in first")
            if who == "admin" and not req.admin:
                raise HttpError(403, "this needs a tenant admin (forbidden)")
            try:
                return fn(req, **m.groupdict())
            except mcplink.Error as e:
                if method == "POST" and s is not None:
                    s.flashes.append({"kind": "error", "error": err_dict(e)})
                    return redirect(_back(req))
                status = 404 if e.code == "not_found" else 403 if e.code == "forbidden" else 502
                return self.page(req, "Error", f'<p class="flash error">{error_html(err_dict(e))}</p>',
                                 status=status)
        if allowed:
            raise HttpError(405, "method not allowed")
        raise HttpError(404, "no such page")

    def _check_post(self, req: Request, handler: Any) -> None:
        req.form = parse_form(handler)
        origin = handler.headers.get("Origin")
        if origin is not None and origin != self.origin:
            raise HttpError(403, "cross-origin form refused")
        if handler.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site"):
            raise HttpError(403, "cross-site form refused")
        s = req.session
        if s is None or not hmac.compare_digest(req.form.get("csrf", "").encode(), s.csrf.encode()):
            raise HttpError(403, "the form's CSRF token is missing or stale: reload the page")

    # ---- helpers ---------------------------------------------------------------------------

    def client(self, req: Request) -> mcplink.Client:
        assert req.session is not None and req.session.signed_in
        return self.engine.as_user(req.session.tenant, req.session.user)

    def csrf_field(self, req: Request) -> str:
        s = req.session or req.new_session
        return f'<input type="hidden" name="csrf" value="{h(s.csrf if s else "")}">'

    def form(self, req: Request, action: str, inner: str, button: str, cls: str = "",
             back: str | None = None, confirm: bool = False) -> str:
        b = f'<input type="hidden" name="back" value="{h(back or req.path)}">'
        return (f'<form method="post" action="{h(action)}" class="{h(cls)}">{self.csrf_field(req)}{b}'
                f'{inner}<button type="submit"{" class=danger" if confirm else ""}>{h(button)}</button></form>')

    def flash(self, req: Request, kind: str, **data: Any) -> None:
        assert req.session is not None
        req.session.flashes.append({"kind": kind, **data})

    def take_flashes(self, req: Request, kind: str | None = None) -> list[dict[str, Any]]:
        s = req.session
        if s is None:
            return []
        got = [f for f in s.flashes if kind is None or f["kind"] == kind]
        s.flashes = [f for f in s.flashes if f not in got]
        return got

    def page(self, req: Request, title: str, body: str, status: int = 200, nav: str = "") -> Response:
        s = req.session
        who = ""
        links = ""
        if s is not None and s.signed_in:
            links = "".join(f'<a href="{u}"{" class=active" if nav == u else ""}>{t}</a>' for u, t in
                            [("/servers", "MCP servers"), ("/tools", "Tools"), ("/assistants", "Assistants"),
                             ("/spaces", "Spaces")])
            who = (f'<div class="who"><span>{h(s.user)} <span class="muted">· {h(s.role)} in '
                   f'{h(s.tenant)}</span></span>'
                   + self.form(req, "/logout", "", "Sign out", cls="inline") + "</div>")
        flashes = ""
        for f in self.take_flashes(req):
            if f["kind"] == "ok":
                flashes += f'<p class="flash ok">{h(f["message"])}</p>'
            elif f["kind"] == "error":
                flashes += f'<p class="flash error">{error_html(f["error"])}</p>'
            # other kinds (validate, diff, result) belong to the page that took them already
        html_text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{h(title)} · mcplink console</title><link rel="stylesheet" href="/static/console.css"></head>
<body><header><a class="brand" href="/servers">mcplink <span>console</span></a><nav>{links}</nav>{who}</header>
<main><h1>{h(title)}</h1>{flashes}{body}</main>
<footer>Reference host for the mcplink engine · every action is an engine op run as the signed-in user</footer>
</body></html>"""
        return Response(status, html_text.encode())

    # ---- sign-in -------------------------------------------------------------------------------

    def login_page(self, req: Request) -> Response:
        if req.session is None:
            req.session = req.new_session = self.sessions.new()
        if req.session.signed_in:
            return redirect("/servers")
        body = f"""<section class="card narrow"><p class="muted">Sign in as a user of your tenant. Tenant admins
configure MCP servers; every user connects their own OAuth accounts and uses the tools.</p>
<form method="post" action="/login" class="stack">{self.csrf_field(req)}
<label>Tenant <input name="tenant" required autocomplete="organization"></label>
<label>User <input name="user" required autocomplete="username"></label>
<label>Password <input name="password" type="password" required autocomplete="current-password"></label>
<button type="submit">Sign in</button></form></section>"""
        return self.page(req, "Sign in", body)

    def login(self, req: Request) -> Response:
        tenant, user, pw = (req.form.get(k, "") for k in ("tenant", "user", "password"))
        role = None
        if tenant and user and "/" not in tenant + user and self.accounts.check(tenant, user, pw):
            role = self._engine_role(tenant, user)
        if role is None:
            self.flash(req, "error", error={"code": "unauthorized",
                                            "message": "the tenant, user or password is wrong"})
            return redirect("/login")
        self.sessions.drop(req.session)                 # a new id after sign-in (no fixation)
        s = req.new_session = self.sessions.new()
        s.tenant, s.user, s.role = tenant, user, role
        log.info("signed in: %s/%s (%s)", tenant, user, role)
        return redirect("/servers")

    def _engine_role(self, tenant: str, user: str) -> str | None:
        """The user's role in the engine (the host asks as the system actor)."""
        cursor = None
        while True:
            try:
                page = self.engine.op("user.list", {"tenant": tenant, "limit": 500, **({"cursor": cursor} if cursor else {})},
                                      system=True)
            except mcplink.Error:
                return None
            for u in page["items"]:
                if u["name"] == user:
                    return u["role"]
            cursor = page.get("next_cursor")
            if not cursor:
                return None

    def logout(self, req: Request) -> Response:
        self.sessions.drop(req.session)
        r = redirect("/login")
        r.headers.append(("Set-Cookie", f"{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"))
        return r

    def css(self, req: Request) -> Response:
        from pathlib import Path
        return Response(200, (Path(__file__).parent / "static" / "console.css").read_bytes(), "text/css")

    # ---- step 1: the servers list and Create ------------------------------------------------

    def servers_page(self, req: Request) -> Response:
        c = self.client(req)
        items = c.server.list(limit=500)["items"]
        enabled = {t["server"]: t["enabled"] for t in c.tool.list(limit=500)["items"]}
        rows = ""
        for s in items:
            conn = ""
            if s["auth_type"] == "oauth":
                conn = _badge("Connected", "good") if s["oauth"]["user_connected"] else _badge("Not connected", "warn")
            rows += (f'<tr><td><a href="/servers/{h(s["id"])}">{h(s["name"])}</a>'
                     f'<div class="muted small">{h(s.get("description") or "")}</div></td>'
                     f'<td>{h(s["url"]) if s["url_set"] else _badge("Server URL not set", "warn")}</td>'
                     f'<td>{h(AUTH_LABELS.get(s["auth_type"], s["auth_type"]))} {conn}</td>'
                     f'<td>{_status_badge(s["capabilities_status"])}</td>'
                     f'<td>{_badge("Enabled", "good") if enabled.get(s["id"]) else _badge("Not enabled", "")}</td></tr>')
        table = (f'<table><thead><tr><th>Name</th><th>URL</th><th>Authentication</th><th>Capabilities</th>'
                 f'<th>Tools</th></tr></thead><tbody>{rows or "<tr><td colspan=5 class=muted>No MCP servers yet.</td></tr>"}'
                 f'</tbody></table>')
        create = ""
        if req.admin:
            create = ('<section class="card"><h2>Create</h2><p class="muted">Step 1: give the server a name. '
                      'You configure its URL and authentication next.</p>'
                      + self.form(req, "/servers", '<label>Name <input name="name" required maxlength="200" '
                                  'placeholder="Internal CRM Tools"></label><label>Description (optional) '
                                  '<input name="description" maxlength="4000"></label>', "Create", cls="stack")
                      + "</section>")
        return self.page(req, "MCP servers", f'<section class="card">{table}</section>{create}', nav="/servers")

    def server_create(self, req: Request) -> Response:
        args = {"name": req.form.get("name", "").strip()}
        if req.form.get("description", "").strip():
            args["description"] = req.form["description"].strip()
        s = self.client(req).server.create(args)
        self.flash(req, "ok", message=f"Server '{s['name']}' created. Step 2: set its URL and authentication.")
        return redirect(f"/servers/{s['id']}")

    # ---- step 2: the server page, Edit, OAuth settings ---------------------------------------

    def server_page(self, req: Request, sid: str) -> Response:
        c = self.client(req)
        s = c.server.get(id=sid)
        parts = [self._server_summary(req, s), self._validate_box(req, s)]
        if s["auth_type"] == "oauth":
            parts.append(self._oauth_box(req, c, s))
        diff = self.take_flashes(req, "diff")
        if diff:
            parts.append(_diff_box(diff[-1]))
        parts.append(self._capabilities_box(req, c, s))
        if req.admin:
            parts.append(self._edit_box(req, c, s))
            parts.append('<section class="card"><h2>Delete</h2>'
                         + self.form(req, f"/servers/{s['id']}/delete", "", "Delete this server", confirm=True,
                                     back="/servers")
                         + "</section>")
        return self.page(req, s["name"], "".join(parts), nav="/servers")

    def _server_summary(self, req: Request, s: dict[str, Any]) -> str:
        desc = h(s.get("description") or "—")
        if s.get("description_source") == "server":
            desc += ' <span class="muted">(from the server\'s metadata)</span>'
        key = ""
        if s["auth_type"] == "api_key":
            key = f'<dt>API key</dt><dd>{_badge("set", "good") if s["api_key_set"] else _badge("not set", "warn")} <span class="muted">(write-only: never shown)</span></dd>'
        cls = s.get("classification")
        actions = self.form(req, f"/servers/{s['id']}/validate", "", "Validate", cls="inline")
        if req.admin:
            actions += self.form(req, f"/servers/{s['id']}/refresh", "", "Refresh capabilities", cls="inline")
        return f"""<section class="card"><dl class="summary">
<dt>URL</dt><dd>{h(s["url"]) if s["url_set"] else _badge("Server URL not set", "warn")}</dd>
<dt>Authentication</dt><dd>{h(AUTH_LABELS.get(s["auth_type"], s["auth_type"]))}</dd>{key}
<dt>Description</dt><dd>{desc}</dd>
<dt>Security classification</dt><dd>{h(f'{cls["name"]} (level {cls["level"]})') if cls else "none (personal assistants only)"}</dd>
<dt>Capabilities</dt><dd>{_status_badge(s["capabilities_status"])} <span class="muted">discovered {h(when(s.get("discovered_at")))}</span></dd>
<dt>Tools section</dt><dd>{_badge("Enabled for the tenant", "good") if s["enabled"] else _badge("Not enabled", "")} <a href="/tools">Tools</a></dd>
</dl><div class="actions">{actions}</div></section>"""

    def _validate_box(self, req: Request, s: dict[str, Any]) -> str:
        results = [f for f in self.take_flashes(req, "validate") if f["server"] == s["id"]]
        rows = ""
        got = results[-1]["result"] if results else None
        for status, meaning in VALIDATE_STATUSES:
            mark = got is not None and got.get("status") == status
            rows += (f'<tr class="{"hit" if mark else ""}"><td>{_badge(status, _validate_tone(status)) if mark else h(status)}</td>'
                     f'<td>{h(meaning)}</td></tr>')
        head = ""
        if got is not None:
            head = (f'<p class="validate-result"><strong>Validate: {h(got.get("status"))}</strong> '
                    f'<span class="muted">{h(got.get("detail"))} · code <code>{h(got.get("code"))}</code></span></p>')
        else:
            head = '<p class="muted">Validate checks whether the engine can reach the server and authenticate, as you.</p>'
        return f'<section class="card" id="validate"><h2>Validate</h2>{head}<table class="compact">{rows}</table></section>'

    def _oauth_box(self, req: Request, c: mcplink.Client, s: dict[str, Any]) -> str:
        o = s["oauth"]
        try:
            st = c.oauth.status(server=s["id"])
        except mcplink.Error as e:
            st = {"connected": False, "error": err_dict(e)}
        if st.get("connected"):
            conn = (_badge("Connected", "good") + f' <span class="muted">as you · scopes {h(" ".join(st.get("scopes") or []) or "—")} · '
                    f'token expires {h(when(st.get("expires_at")))}</span>'
                    + self.form(req, f"/servers/{s['id']}/disconnect", "", "Disconnect", cls="inline"))
        else:
            conn = (_badge("Not connected", "warn") + ' <span class="muted">You sign in with the service '
                    'yourself; your token is yours alone.</span>'
                    + self.form(req, f"/servers/{s['id']}/connect", "", "Connect", cls="inline"))
        d = o.get("discovered") or {}
        disc = ""
        if d:
            reg = ("Client ID Metadata Document (public client)" if d.get("client_id_metadata_document_supported")
                   else "dynamic client registration" if d.get("registration_endpoint") else "manual only")
            disc = f"""<dl class="summary small">
<dt>Issuer</dt><dd>{h(d.get("issuer"))}</dd>
<dt>Authorization URL</dt><dd>{h(d.get("authorization_endpoint"))}</dd>
<dt>Token URL</dt><dd>{h(d.get("token_endpoint"))}</dd>
<dt>Revocation URL</dt><dd>{h(d.get("revocation_endpoint") or "—")}</dd>
<dt>Scopes supported</dt><dd>{h(" ".join(d.get("scopes_supported") or []) or "—")}</dd>
<dt>Client registration</dt><dd>{h(reg)}</dd>
<dt>Discovered</dt><dd>{h(when(d.get("discovered_at")))}</dd></dl>"""
        else:
            disc = '<p class="muted">Nothing discovered yet.</p>'
        again = self.form(req, f"/servers/{s['id']}/discover", "", "Discover again", cls="inline") if req.admin else ""
        manual = ""
        if req.admin:
            mode = o.get("registration_mode") or "auto"
            secret_note = ("A client secret is set; leave empty to keep it." if o.get("client_secret_set")
                           else "No client secret set (optional).")
            manual = ('<h3>Configuration</h3>'
                      + self.form(req, f"/servers/{s['id']}/oauth", f"""
<fieldset><legend>Client registration</legend>
<label class="radio"><input type="radio" name="registration_mode" value="auto"{" checked" if mode == "auto" else ""}> Automatic (discovery, Client ID Metadata Document or dynamic registration)</label>
<label class="radio"><input type="radio" name="registration_mode" value="manual"{" checked" if mode == "manual" else ""}> Manual (a client registered with the provider)</label></fieldset>
<label>OAuth 2.0 Client ID <input name="client_id" value="{h(o.get("client_id") or "")}" maxlength="500"></label>
<label>OAuth 2.0 Client Secret <input name="client_secret" type="password" value="" autocomplete="off" maxlength="4096" placeholder="write-only"><span class="hint">{h(secret_note)}</span></label>
<label>Authorization URL <input name="authorization_url" value="{h(o.get("authorization_url") or "") if mode == "manual" else ""}" placeholder="{h(o.get("authorization_url") or "")}"></label>
<label>Token URL <input name="token_url" value="{h(o.get("token_url") or "") if mode == "manual" else ""}" placeholder="{h(o.get("token_url") or "")}"></label>
<label>Revocation URL (optional) <input name="revocation_url" value="{h(o.get("revocation_url") or "") if mode == "manual" else ""}" placeholder="{h(o.get("revocation_url") or "")}"></label>
<label>Scopes (optional, separated by spaces) <input name="scopes" value="{h(" ".join(o.get("scopes") or []))}"></label>
<p class="hint">Redirect URI to register with the provider: <code>{h(self.origin)}/oauth/callback</code> · Client ID Metadata Document: <code>{h(self.origin)}/oauth/client-metadata.json</code></p>""",
                                  "Save OAuth settings", cls="stack"))
        return (f'<section class="card" id="oauth"><h2>OAuth 2.0</h2><p class="connection">Your connection: {conn}</p>'
                f'<h3>Automatic discovery {again}</h3>{disc}{manual}</section>')

    def _capabilities_box(self, req: Request, c: mcplink.Client, s: dict[str, Any]) -> str:
        try:
            caps = c.server.capabilities(id=s["id"])
        except mcplink.Error as e:
            return f'<section class="card"><h2>Capabilities</h2><p class="flash error">{error_html(err_dict(e))}</p></section>'
        out = ['<section class="card" id="capabilities"><h2>Capabilities</h2>']
        if caps.get("error"):
            out.append(f'<p class="flash error">Last discovery failed: {error_html(caps["error"]) if isinstance(caps["error"], dict) else h(caps["error"])}</p>')
        pending = [t for t in caps["tools"] if t["status"] == "pending"]
        if pending:
            out.append('<div class="pending"><h3>Pending tool definitions</h3><p class="muted">These tools changed on '
                       'the server. Calls to them are refused until a tenant admin approves the new definition.</p>')
            for t in pending:
                approve = (self.form(req, f"/servers/{s['id']}/approve",
                                     f'<input type="hidden" name="tool" value="{h(t["name"])}">', "Approve", cls="inline")
                           if req.admin else "")
                out.append(f'<div class="pending-tool"><h4>{h(t["name"])} {approve}</h4><div class="cols">'
                           f'<div><h5>Approved</h5><pre>{h(pretty(t.get("approved_definition")))}</pre></div>'
                           f'<div><h5>Pending</h5><pre>{h(pretty(t["definition"]))}</pre></div></div></div>')
            out.append("</div>")
        for kind, title, key in [("tools", "Tools", "name"), ("resources", "Resources", "uri"),
                                 ("resource_templates", "Resource templates", "uriTemplate"), ("prompts", "Prompts", "name")]:
            rows = ""
            for it in caps.get(kind, []):
                d = it.get("definition") or {}
                rows += (f'<tr><td><code>{h(d.get(key) or it["name"])}</code></td><td>{h(d.get("title") or "")}</td>'
                         f'<td>{h(d.get("description") or "")}</td><td>{_status_badge(it["status"])}</td></tr>')
            out.append(f'<h3>{h(title)} <span class="count">{len(caps.get(kind, []))}</span></h3>'
                       f'<table class="compact"><tbody>{rows or "<tr><td class=muted>none</td></tr>"}</tbody></table>')
        out.append("</section>")
        return "".join(out)

    def _edit_box(self, req: Request, c: mcplink.Client, s: dict[str, Any]) -> str:
        classes = c.classification.list()["items"]
        opts = '<option value="">None (personal assistants only)</option>' + "".join(
            f'<option value="{h(k["name"])}"{" selected" if (s.get("classification") or {}).get("id") == k["id"] else ""}>'
            f'{h(k["name"])} (level {h(k["level"])})</option>' for k in classes)
        radios = "".join(
            f'<label class="radio"><input type="radio" name="auth_type" value="{v}"{" checked" if s["auth_type"] == v else ""}> {h(t)}</label>'
            for v, t in AUTH_LABELS.items())
        key_note = ("An API key is set; leave empty to keep it." if s["api_key_set"] else "No API key set.")
        desc_val = s.get("description") or "" if s.get("description_source") != "server" else ""
        inner = f"""
<label>URL <input name="url" type="url" value="{h(s["url"] or "")}" placeholder="https://mcp.yourcompany.com/mcp" maxlength="2048"></label>
<fieldset><legend>Authentication type</legend>{radios}</fieldset>
<label>API key <input name="api_key" type="password" value="" autocomplete="off" maxlength="4096" placeholder="write-only"><span class="hint">{h(key_note)} The key is encrypted at rest and sent as a bearer token.</span></label>
<label>Description (optional) <textarea name="description" maxlength="4000" rows="2" placeholder="{h(s.get("description") or "") if s.get("description_source") == "server" else ""}">{h(desc_val)}</textarea><span class="hint">Left empty, it is filled from the server's metadata.</span></label>
<label>Security classification <select name="classification">{opts}</select></label>"""
        return (f'<section class="card" id="edit"><h2>Edit</h2><p class="muted">Step 2: saving a URL or new '
                f'credentials discovers the server\'s capabilities.</p>'
                + self.form(req, f"/servers/{s['id']}/update", inner, "Save", cls="stack") + "</section>")

    def server_update(self, req: Request, sid: str) -> Response:
        c = self.client(req)
        s = c.server.get(id=sid)
        f = req.form
        args: dict[str, Any] = {"id": s["id"]}
        url = f.get("url", "").strip()
        if url != (s["url"] or ""):
            args["url"] = url or None
        if f.get("auth_type") in AUTH_LABELS and f["auth_type"] != s["auth_type"]:
            args["auth_type"] = f["auth_type"]
        if f.get("api_key"):
            args["api_key"] = f["api_key"]
            args.setdefault("auth_type", f.get("auth_type") or s["auth_type"])
        desc = f.get("description", "").strip()
        current_desc = s.get("description") or "" if s.get("description_source") != "server" else ""
        if desc != current_desc:
            args["description"] = desc or None
        cls = f.get("classification", "")
        if cls != ((s.get("classification") or {}).get("name") or ""):
            args["classification"] = cls or None
        if len(args) == 1:
            self.flash(req, "ok", message="Nothing changed.")
            return redirect(f"/servers/{s['id']}")
        r = c.server.update(args)
        msg = "Saved."
        d = r.get("discovery")
        err = (d or {}).get("error") or {}
        # saving an OAuth server discovers its authorization server at once (RFC 9728, RFC 8414)
        od = (r.get("oauth") or {}).get("discovery") if r["auth_type"] == "oauth" else None
        if od and od.get("error"):
            oe = od["error"] if isinstance(od["error"], dict) else {"code": str(od["error"]), "message": str(od.get("detail") or "")}
            self.flash(req, "error", error={**oe, "message": "OAuth discovery failed: " + str(oe.get("message") or od.get("detail") or "")})
        elif od and od.get("status") == "ok":
            msg += " OAuth endpoints discovered."
        if d is not None and d.get("ok"):
            msg += " Capabilities discovered."
            self.flash(req, "diff", diff=d.get("diff") or {}, title="Discovery")
        elif d is not None and d.get("status") == "awaiting_user":
            msg += (" Capabilities come with the first user who connects (awaiting_user): an OAuth "
                    "server is discovered with a user's token.")
        elif d is not None:
            self.flash(req, "error", error={**err, "message": "discovery failed: " + str(err.get("message"))})
        self.flash(req, "ok", message=msg)
        return redirect(f"/servers/{s['id']}")

    def server_oauth(self, req: Request, sid: str) -> Response:
        c = self.client(req)
        s = c.server.get(id=sid)
        f = req.form
        mode = f.get("registration_mode") if f.get("registration_mode") in ("auto", "manual") else "auto"
        o: dict[str, Any] = {"registration_mode": mode}
        if mode == "manual":
            for k in ("client_id", "authorization_url", "token_url", "revocation_url"):
                o[k] = f.get(k, "").strip() or None
        elif f.get("client_id", "").strip() != (s["oauth"].get("client_id") or ""):
            o["client_id"] = f.get("client_id", "").strip() or None
        if f.get("client_secret"):
            o["client_secret"] = f["client_secret"]
        scopes = f.get("scopes", "").split()
        if scopes != (s["oauth"].get("scopes") or []):
            o["scopes"] = scopes or None
        c.server.update(id=s["id"], auth_type="oauth", oauth=o)
        self.flash(req, "ok", message="OAuth settings saved.")
        return redirect(f"/servers/{s['id']}#oauth")

    def server_discover(self, req: Request, sid: str) -> Response:
        r = self.client(req).oauth.discover(server=sid)
        self.flash(req, "ok", message=f"Authorization server discovered: {r.get('issuer')}")
        return redirect(f"/servers/{sid}#oauth")

    def server_delete(self, req: Request, sid: str) -> Response:
        self.client(req).server.delete(id=sid)
        self.flash(req, "ok", message="Server deleted.")
        return redirect("/servers")

    # ---- Refresh capabilities, Approve, Validate -------------------------------------------------

    def server_refresh(self, req: Request, sid: str) -> Response:
        r = self.client(req).server.refresh(id=sid)
        if r.get("ok"):
            self.flash(req, "diff", diff=r.get("diff") or {}, title="Refresh capabilities")
            self.flash(req, "ok", message="Capabilities refreshed.")
        else:
            self.flash(req, "error", error={**(r.get("error") or {}), "message": "refresh failed: "
                                            + str((r.get("error") or {}).get("message"))})
        return redirect(f"/servers/{sid}")

    def tool_approve(self, req: Request, sid: str) -> Response:
        r = self.client(req).tool.approve(server=sid, tool=req.form.get("tool", ""))
        self.flash(req, "ok", message=f"Tool '{r['tool']}' approved: calls use its new definition.")
        return redirect(f"/servers/{sid}#capabilities")

    def server_validate(self, req: Request, sid: str) -> Response:
        r = self.client(req).server.validate(id=sid)
        self.flash(req, "validate", server=r["server"], result=r)
        return redirect(f"/servers/{r['server']}#validate")

    # ---- OAuth per user: Connect, the redirect URI, Disconnect, the client metadata ------------

    def oauth_connect(self, req: Request, sid: str) -> Response:
        r = self.client(req).oauth.begin(server=sid)
        url = r["authorization_url"]
        if not url.startswith("https://"):
            raise HttpError(502, "the authorization URL is not https")
        return redirect(url)

    def oauth_callback(self, req: Request) -> Response:
        s = req.session
        if s is None or not s.signed_in:
            return self.page(req, "Sign in first", '<p class="flash error">Your console session ended before '
                             'the provider sent you back. <a href="/login">Sign in</a> and connect again.</p>', 401)
        try:
            r = self.client(req).oauth.complete(callback_url=self.origin + req.target)
        except mcplink.Error as e:
            self.flash(req, "error", error=err_dict(e))
            return redirect("/servers")
        self.flash(req, "ok", message="Connected: your account is linked to this server.")
        return redirect(f"/servers/{r['server']}#oauth")          # the code leaves the address bar

    def oauth_disconnect(self, req: Request, sid: str) -> Response:
        self.client(req).oauth.disconnect(server=sid)
        self.flash(req, "ok", message="Disconnected: your tokens were revoked and deleted.")
        return redirect(f"/servers/{sid}#oauth")

    def client_metadata(self, req: Request) -> Response:
        doc = self.engine.op("oauth.client_metadata", system=True)
        return Response(200, json.dumps(doc).encode(), "application/json")

    # ---- step 3: Tools -----------------------------------------------------------------------

    def tools_page(self, req: Request) -> Response:
        c = self.client(req)
        rows = ""
        for t in c.tool.list(limit=500)["items"]:
            btn = ""
            if req.admin:
                inner = f'<input type="hidden" name="server" value="{h(t["server"])}">'
                inner += f'<input type="hidden" name="enabled" value="{"0" if t["enabled"] else "1"}">'
                btn = self.form(req, "/tools", inner, "Disable" if t["enabled"] else "Enable", cls="inline")
            cls = t.get("classification")
            rows += (f'<tr><td><a href="/servers/{h(t["server"])}">{h(t["name"])}</a></td>'
                     f'<td>{_status_badge(t["capabilities_status"])}</td>'
                     f'<td>{h(_cls_text(cls)) if cls else "none"}</td>'
                     f'<td>{_badge("Enabled", "good") if t["enabled"] else _badge("Not enabled", "")}</td><td>{btn}</td></tr>')
        body = (f'<section class="card"><p class="muted">Step 3: enable an MCP server as a tool for your tenant; '
                f'then attach it to assistants.</p><table><thead><tr><th>MCP server</th><th>Capabilities</th>'
                f'<th>Classification</th><th>For the tenant</th><th></th></tr></thead><tbody>'
                f'{rows or "<tr><td colspan=5 class=muted>No MCP servers yet.</td></tr>"}</tbody></table></section>')
        return self.page(req, "Tools", body, nav="/tools")

    def tools_set(self, req: Request) -> Response:
        c = self.client(req)
        sid = req.form.get("server", "")
        if req.form.get("enabled") == "1":
            r = c.tool.enable(server=sid)
            self.flash(req, "ok", message=f"'{r['name']}' is enabled for the tenant.")
        else:
            r = c.tool.disable(server=sid)
            self.flash(req, "ok", message=f"'{r['name']}' is disabled: assistants stop using it.")
        return redirect("/tools")

    # ---- spaces and classifications ----------------------------------------------------------

    def spaces_page(self, req: Request) -> Response:
        c = self.client(req)
        classes = c.classification.list()["items"]
        spaces = c.space.list(limit=500)["items"]
        crow = "".join(f'<tr><td>{h(k["name"])}</td><td>{h(k["level"])}</td><td>{h(k.get("description") or "")}</td></tr>'
                       for k in classes)
        srow = "".join(f'<tr><td>{h(sp["name"])}</td><td>{h(sp["classification"]["name"])} (level {h(sp["classification"]["level"])})</td></tr>'
                       for sp in spaces)
        forms = ""
        if req.admin:
            opts = "".join(f'<option value="{h(k["name"])}">{h(k["name"])} (level {h(k["level"])})</option>' for k in classes)
            forms = ('<section class="card"><h2>Set a classification</h2>'
                     + self.form(req, "/classifications", '<label>Name <input name="name" required maxlength="100"></label>'
                                 '<label>Level <input name="level" type="number" min="0" max="1000" required></label>'
                                 '<label>Description (optional) <input name="description" maxlength="1000"></label>',
                                 "Save classification", cls="stack")
                     + '</section><section class="card"><h2>Create a space</h2>'
                     + self.form(req, "/spaces", '<label>Name <input name="name" required maxlength="200"></label>'
                                 f'<label>Required classification <select name="classification">{opts}</select></label>',
                                 "Create space", cls="stack") + "</section>")
        body = (f'<section class="card"><p class="muted">{h(CLASSIFICATION_RULE)}</p><h2>Security classifications</h2>'
                f'<table class="compact"><thead><tr><th>Name</th><th>Level</th><th>Description</th></tr></thead><tbody>'
                f'{crow or "<tr><td colspan=3 class=muted>none</td></tr>"}</tbody></table><h2>Spaces</h2>'
                f'<table class="compact"><thead><tr><th>Space</th><th>Requires</th></tr></thead><tbody>'
                f'{srow or "<tr><td colspan=2 class=muted>none</td></tr>"}</tbody></table></section>{forms}')
        return self.page(req, "Spaces", body, nav="/spaces")

    def space_create(self, req: Request) -> Response:
        r = self.client(req).space.create(name=req.form.get("name", "").strip(),
                                         classification=req.form.get("classification", ""))
        self.flash(req, "ok", message=f"Space '{r['name']}' created.")
        return redirect("/spaces")

    def classification_set(self, req: Request) -> Response:
        try:
            level = int(req.form.get("level", ""))
        except ValueError:
            raise mcplink.InvalidArgument("level must be a whole number", field="level") from None
        args: dict[str, Any] = {"name": req.form.get("name", "").strip(), "level": level}
        if req.form.get("description", "").strip():
            args["description"] = req.form["description"].strip()
        r = self.client(req).classification.set(args)
        self.flash(req, "ok", message=f"Classification '{r['name']}' (level {r['level']}) saved.")
        return redirect("/spaces")

    # ---- step 4: assistants, attach, try a tool ---------------------------------------------

    def assistants_page(self, req: Request) -> Response:
        c = self.client(req)
        items = c.assistant.list(limit=500)["items"]
        spaces = c.space.list(limit=500)["items"]
        rows = "".join(
            f'<tr><td><a href="/assistants/{h(a["id"])}">{h(a["name"])}</a></td>'
            f'<td>{h("Space " + a["space"]["name"]) if a.get("space") else "Personal assistant"}</td></tr>'
            for a in items)
        opts = '<option value="">Personal assistant (yours)</option>' + "".join(
            f'<option value="{h(sp["id"])}">Space {h(sp["name"])} (requires {h(sp["classification"]["name"])})</option>'
            for sp in spaces)
        body = (f'<section class="card"><table><thead><tr><th>Assistant</th><th>Where</th></tr></thead><tbody>'
                f'{rows or "<tr><td colspan=2 class=muted>No assistants yet.</td></tr>"}</tbody></table></section>'
                '<section class="card"><h2>Create an assistant</h2>'
                + self.form(req, "/assistants", '<label>Name <input name="name" required maxlength="200"></label>'
                            f'<label>In <select name="space">{opts}</select></label>', "Create assistant", cls="stack")
                + "</section>")
        return self.page(req, "Assistants", body, nav="/assistants")

    def assistant_create(self, req: Request) -> Response:
        args = {"name": req.form.get("name", "").strip()}
        if req.form.get("space"):
            args["space"] = req.form["space"]
        a = self.client(req).assistant.create(args)
        self.flash(req, "ok", message=f"Assistant '{a['name']}' created.")
        return redirect(f"/assistants/{a['id']}")

    def assistant_page(self, req: Request, aid: str) -> Response:
        c = self.client(req)
        a = c.assistant.get(id=aid)
        tools = c.assistant.tools(assistant=aid)
        need = None
        if a.get("space"):
            sp = next((x for x in c.space.list(limit=500)["items"] if x["id"] == a["space"]["id"]), None)
            need = sp["classification"] if sp else None
        if need:
            rule = (f'In space <strong>{h(a["space"]["name"])}</strong>, which requires classification '
                    f'<strong>{h(need["name"])}</strong> (level {h(need["level"])}): only servers classified at '
                    f'level {h(need["level"])} or higher can be attached and used.')
        else:
            rule = ('A personal assistant: any MCP server enabled for the tenant can be attached, classified '
                    'or not.')
        attached = "".join(
            f'<tr><td><a href="/servers/{h(sv["id"])}">{h(sv["name"])}</a></td>'
            f'<td>{_badge("usable", "good") if sv["usable"] else _badge("not usable", "bad")} '
            f'<span class="muted">{h(sv.get("reason") or "")}</span></td><td>'
            + self.form(req, f"/assistants/{aid}/detach", f'<input type="hidden" name="server" value="{h(sv["id"])}">',
                        "Detach", cls="inline") + "</td></tr>"
            for sv in tools["servers"])
        attached_ids = {sv["id"] for sv in tools["servers"]}
        opts = ""
        for t in c.tool.list(limit=500)["items"]:
            if not t["enabled"] or t["server"] in attached_ids:
                continue
            k = t.get("classification")
            if need is None:
                note = f'{k["name"]} (level {k["level"]})' if k else "no classification"
            elif k is None:
                note = "no classification: personal assistants only"
            elif k["level"] >= need["level"]:
                note = f'{k["name"]} (level {k["level"]}): meets {need["name"]}'
            else:
                note = f'{k["name"]} (level {k["level"]}): below {need["name"]} (level {need["level"]})'
            opts += f'<option value="{h(t["server"])}">{h(t["name"])} — {h(note)}</option>'
        attach = (self.form(req, f"/assistants/{aid}/attach", f'<label>MCP server tool <select name="server">{opts}</select></label>',
                            "Attach", cls="stack") if opts else '<p class="muted">No other enabled MCP servers.</p>')
        trows = "".join(
            f'<tr><td><code>{h(t["name"])}</code></td><td>{h(t.get("description") or "")}</td>'
            f'<td>{_badge("definition awaits approval", "warn") if t.get("pending_approval") else ""}</td></tr>'
            for t in tools["tools"])
        topts = "".join(f'<option value="{h(t["name"])}">{h(t["name"])}</option>' for t in tools["tools"])
        result = ""
        for f in self.take_flashes(req, "result"):
            if f["assistant"] != aid:
                continue
            r = f["result"]
            texts = "".join(f'<pre class="content">{h(x.get("text"))}</pre>' for x in r.get("content") or []
                            if isinstance(x, dict) and x.get("type") == "text")
            result = (f'<div class="result{" is-error" if r.get("isError") else ""}"><h3>Result of <code>{h(f["tool"])}</code>'
                      f'{" " + _badge("isError", "bad") if r.get("isError") else ""}</h3>{texts}'
                      + (f'<h4>structuredContent</h4><pre>{h(pretty(r["structuredContent"]))}</pre>' if "structuredContent" in r else "")
                      + "</div>")
        result = self.pending_box(req, aid) + result
        last_args = "{}"
        for f in self.take_flashes(req, "args"):
            last_args = f["text"]
        try_box = (self.form(req, f"/assistants/{aid}/call",
                             f'<label>Tool <select name="tool">{topts}</select></label>'
                             f'<label>Arguments (JSON object) <textarea name="arguments" rows="3">{h(last_args)}</textarea></label>',
                             "Call tool", cls="stack") if topts else '<p class="muted">Attach an MCP server first.</p>')
        body = (f'<section class="card"><p>{rule}</p><p class="muted small">{h(CLASSIFICATION_RULE)}</p></section>'
                f'<section class="card"><h2>MCP server tools</h2><table class="compact"><tbody>'
                f'{attached or "<tr><td class=muted>none attached</td></tr>"}</tbody></table><h3>Add an MCP server tool</h3>{attach}</section>'
                f'<section class="card"><h2>Tools this assistant can call</h2><table class="compact"><tbody>'
                f'{trows or "<tr><td class=muted>none</td></tr>"}</tbody></table></section>'
                f'<section class="card" id="try"><h2>Try a tool</h2><p class="muted">Calls the tool as you, with your '
                f'credentials.</p>{try_box}{result}</section>')
        title = f'{a["name"]}'
        return self.page(req, title, body, nav="/assistants")

    def assistant_attach(self, req: Request, aid: str) -> Response:
        r = self.client(req).assistant.attach(assistant=aid, server=req.form.get("server", ""))
        self.flash(req, "ok", message="MCP server tool attached." if r.get("attached") else "Already attached.")
        return redirect(f"/assistants/{aid}")

    def assistant_detach(self, req: Request, aid: str) -> Response:
        self.client(req).assistant.detach(assistant=aid, server=req.form.get("server", ""))
        self.flash(req, "ok", message="MCP server tool detached.")
        return redirect(f"/assistants/{aid}")

    def tool_call(self, req: Request, aid: str) -> Response:
        text = req.form.get("arguments", "").strip() or "{}"
        self.flash(req, "args", text=text[:20000])
        try:
            args = json.loads(text)
        except ValueError as e:
            raise mcplink.InvalidArgument(f"the arguments are not JSON: {e}", field="arguments") from None
        if not isinstance(args, dict):
            raise mcplink.InvalidArgument("the arguments must be a JSON object", field="arguments")
        tool = req.form.get("tool", "")
        r = self.client(req).tool.call(assistant=aid, tool=tool, arguments=args)
        return self._tool_result(req, aid, tool, r)

    def _tool_result(self, req: Request, aid: str, tool: str, r: dict[str, Any]) -> Response:
        """A tool's result on the assistant page, or, when the server asks the user something
        (input_required), its questions: the call waits in the engine for tool.continue."""
        if mcplink.input_required(r):
            s = req.session
            assert s is not None
            if len(s.pending) >= MAX_PENDING:           # the oldest question goes first
                s.pending.pop(next(iter(s.pending)))
            pid = secrets.token_urlsafe(12)
            s.pending[pid] = {"assistant": aid, "tool": tool, "continuation": r["continuation"],
                              "requests": r.get("input_requests") or [], "expires_at": r.get("expires_at")}
            return redirect(f"/assistants/{aid}#input")
        if len(json.dumps(r)) > MAX_SHOWN:            # results may be up to 16 MiB: keep a page's worth
            r = {"isError": r.get("isError"), "content": [{"type": "text", "text":
                 json.dumps(r, ensure_ascii=False)[:MAX_SHOWN] + "\n… (cut at 64 KB)"}]}
        self.flash(req, "result", assistant=aid, tool=tool, result=r)
        return redirect(f"/assistants/{aid}#try")

    # ---- interactive calls: the server's questions (elicitation) and their answers ----------

    def pending_box(self, req: Request, aid: str) -> str:
        """The questions of this assistant's newest waiting call, as one form: a form-mode request
        as fields rendered from its restricted JSON Schema, a URL-mode request as the URL (text
        and a link, never fetched by the console), marked with the server that asks. Every string
        of a request is the server's: escaped."""
        s = req.session
        assert s is not None
        mine = [(pid, p) for pid, p in s.pending.items() if p["assistant"] == aid]
        if not mine:
            return ""
        pid, p = mine[-1]
        parts = []
        for i, r in enumerate(p["requests"]):
            srv = r.get("server") or {}
            who = (f'<p class="asker">Asked by MCP server <strong>{h(srv.get("name"))}</strong> '
                   f'<span class="muted">({h(srv.get("url"))})</span></p>')
            msg = f'<p class="message">{h(r.get("message"))}</p>' if r.get("message") else ""
            if r.get("method") == "elicitation/create" and r.get("mode") == "form":
                fields = _schema_fields(i, r.get("schema") or {})
                parts.append(f'<fieldset class="request form-mode">{who}{msg}{fields}</fieldset>')
            elif r.get("method") == "elicitation/create" and r.get("mode") == "url":
                url = str(r.get("url") or "")
                link = (f' <a class="url-link" href="{h(url)}" rel="noopener noreferrer nofollow" target="_blank">Open</a>'
                        if urllib.parse.urlsplit(url).scheme in ("https", "http") else "")
                parts.append(
                    f'<fieldset class="request url-mode">{who}{msg}<p>The server asks you to open this address '
                    f'(the console does not open it; check where it leads):</p><p><code class="url">{h(url)}</code>'
                    f'{link}</p><p class="muted">Domain: <code>{h(r.get("url_host") or urllib.parse.urlsplit(url).hostname)}</code>. '
                    f'Submit once you have done what it asks.</p></fieldset>')
            else:
                parts.append(f'<fieldset class="request">{who}<p>The server asks for <code>{h(r.get("method"))}</code>, '
                             f'which this console cannot answer: decline or cancel.</p></fieldset>')
        buttons = ('<div class="buttons"><button type="submit" name="action" value="accept">Submit</button> '
                   '<button type="submit" name="action" value="decline" class="secondary" formnovalidate>Decline</button> '
                   '<button type="submit" name="action" value="cancel" class="danger" formnovalidate>Cancel</button></div>')
        return (f'<div class="input-required" id="input"><h3>The tool <code>{h(p["tool"])}</code> needs your input</h3>'
                f'<form method="post" action="/assistants/{h(aid)}/continue" class="stack">{self.csrf_field(req)}'
                f'<input type="hidden" name="pending" value="{h(pid)}">'
                f'<input type="hidden" name="back" value="/assistants/{h(aid)}">{"".join(parts)}{buttons}</form>'
                f'<p class="muted small">Waits until {h(when(p.get("expires_at")))}.</p></div>')

    def tool_continue(self, req: Request, aid: str) -> Response:
        s = req.session
        assert s is not None
        p = s.pending.get(req.form.get("pending", ""))
        if p is None or p["assistant"] != aid:
            raise mcplink.NotFound("this question was answered already or has expired", field="pending")
        action = req.form.get("action", "")
        if action not in ("accept", "decline", "cancel"):
            raise mcplink.InvalidArgument("answer with Submit, Decline or Cancel", field="action")
        answers: dict[str, Any] = {}
        for i, r in enumerate(p["requests"]):
            if action != "accept" or r.get("method") != "elicitation/create":
                answers[r["key"]] = {"action": "cancel" if action == "accept" else action}
            elif r.get("mode") == "form":
                answers[r["key"]] = {"action": "accept", "content": _form_content(i, r.get("schema") or {}, req.form)}
            else:
                answers[r["key"]] = {"action": "accept"}
        try:
            res = self.client(req).op("tool.continue", {"continuation": p["continuation"], "input_responses": answers})
        except mcplink.InvalidArgument:
            raise                                       # a bad answer: the question stays open
        except mcplink.Error:
            s.pending.pop(req.form["pending"], None)
            raise
        s.pending.pop(req.form["pending"], None)
        return self._tool_result(req, aid, p["tool"], res)


# ---- small helpers ---------------------------------------------------------------------------

def _cookies(header: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        k, _, v = part.strip().partition("=")
        if k and k not in out:
            out[k] = v
    return out


def _back(req: Request) -> str:
    b = req.form.get("back", "")
    return b if b.startswith("/") and not b.startswith("//") and "\\" not in b else "/servers"


def _cls_text(k: dict[str, Any]) -> str:
    return f"{k['name']} (level {k['level']})"


def _badge(text: str, tone: str) -> str:
    return f'<span class="badge {h(tone)}">{h(text)}</span>'


def _status_badge(status: str) -> str:
    tone = {"ok": "good", "approved": "good", "error": "bad", "stale": "warn", "pending": "warn",
            "not_discovered": ""}.get(status, "")
    return _badge(status.replace("_", " "), tone)


def _validate_tone(status: str) -> str:
    return {"OK": "good", "Failed": "bad", "Unauthorized": "bad"}.get(status, "warn")


def _diff_box(f: dict[str, Any]) -> str:
    d = f.get("diff") or {}
    rows = ""
    for kind, title in [("tools", "Tools"), ("resources", "Resources"), ("resource_templates", "Resource templates"),
                        ("prompts", "Prompts")]:
        k = d.get(kind) or {}
        cells = ""
        for what in ("added", "removed", "changed", "pending"):
            names = k.get(what) or []
            cells += f'<td>{"".join(f"<code>{h(n)}</code> " for n in names) or "<span class=muted>—</span>"}</td>'
        rows += f"<tr><th>{h(title)}</th>{cells}</tr>"
    return (f'<section class="card" id="diff"><h2>{h(f.get("title", "Changes"))}: what changed</h2><table class="compact">'
            f'<thead><tr><th></th><th>Added</th><th>Removed</th><th>Changed</th><th>Pending approval</th></tr></thead>'
            f'<tbody>{rows}</tbody></table></section>')


def _field_name(i: int, prop: str) -> str:
    return f"in{i}.{prop}"


def _schema_fields(i: int, schema: dict[str, Any]) -> str:
    """HTML fields for a restricted JSON Schema (a flat object of string, number, integer, boolean
    and enum properties): defaults filled in, required fields marked. Everything is escaped."""
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = set(schema.get("required") or []) if isinstance(schema.get("required"), list) else set()
    out = []
    # the schema's properties come without their order: required fields first, then by name
    for prop, d in sorted(props.items(), key=lambda kv: (kv[0] not in required, str(kv[0]))):
        if not isinstance(d, dict):
            continue
        name = _field_name(i, prop)
        title = d.get("title") or prop
        req_mark = ' <span class="required" title="required">*</span>' if prop in required else ""
        req_attr = " required" if prop in required else ""
        desc = f'<span class="muted small">{h(d.get("description"))}</span>' if d.get("description") else ""
        default = d.get("default")
        t = d.get("type")
        options = d.get("enum") if isinstance(d.get("enum"), list) else None
        if options is None and isinstance(d.get("oneOf"), list):      # titled enum: [{const, title}]
            options = [o.get("const") for o in d["oneOf"] if isinstance(o, dict) and "const" in o]
        if t == "boolean":
            checked = " checked" if default is True else ""
            out.append(f'<label class="check"><input type="checkbox" name="{h(name)}" value="true"{checked}> '
                       f'{h(title)}{req_mark}</label>{desc}')
            continue
        if options is not None:
            opts = "" if prop in required else '<option value="">(none)</option>'
            opts += "".join(f'<option value="{h(o)}"{" selected" if o == default else ""}>{h(o)}</option>'
                            for o in options)
            control = f'<select name="{h(name)}"{req_attr}>{opts}</select>'
        elif t in ("integer", "number"):
            attrs = ' step="1"' if t == "integer" else ' step="any"'
            for k in ("minimum", "maximum"):
                if isinstance(d.get(k), (int, float)) and not isinstance(d.get(k), bool):
                    attrs += f' {k[:3]}="{h(d[k])}"'
            val = f' value="{h(default)}"' if isinstance(default, (int, float)) and not isinstance(default, bool) else ""
            control = f'<input type="number" name="{h(name)}"{attrs}{val}{req_attr}>'
        else:
            kind = {"email": "email", "uri": "url", "date": "date"}.get(d.get("format"), "text")
            attrs = ""
            for k, a in (("minLength", "minlength"), ("maxLength", "maxlength")):
                if isinstance(d.get(k), int) and not isinstance(d.get(k), bool):
                    attrs += f' {a}="{h(d[k])}"'
            val = f' value="{h(default)}"' if isinstance(default, str) else ""
            control = f'<input type="{kind}" name="{h(name)}"{attrs}{val}{req_attr}>'
        out.append(f'<label><span>{h(title)}{req_mark}</span>{control}{desc}</label>')
    return "".join(out) or '<p class="muted">(no fields: submit to agree)</p>'


def _form_content(i: int, schema: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
    """The user's answer to a form-mode request, typed by its schema (the engine checks it and
    applies the schema's defaults to fields left empty)."""
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    content: dict[str, Any] = {}
    for prop, d in props.items():
        if not isinstance(d, dict):
            continue
        raw = form.get(_field_name(i, prop))
        t = d.get("type")
        if t == "boolean":
            content[prop] = raw == "true"
            continue
        if raw is None or raw == "":
            continue
        if t in ("integer", "number"):
            try:
                v = float(raw) if t == "number" else int(raw)
            except ValueError:
                raise mcplink.InvalidArgument(f"'{prop}' must be {'a whole number' if t == 'integer' else 'a number'}",
                                              field=prop) from None
            if isinstance(v, float) and not math.isfinite(v):
                raise mcplink.InvalidArgument(f"'{prop}' must be a finite number", field=prop)
            content[prop] = v
        else:
            content[prop] = raw
    return content
