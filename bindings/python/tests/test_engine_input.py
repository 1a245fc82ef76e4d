"""The engine-wide input handler (``Engine(on_input=...)``, mcpl_options_set_input) against the SDK
v1 (handshake era) and v2 (2026-07-28) fixture servers: it answers every call without a handler of
its own, a Call's own handler comes first, and a handler that raises is logged and becomes no
answer (the elicitation is cancelled) without failing the process or the call; questions a
handshake-era server sends on its session's GET stream reach it, that stream is kept between calls
(one GET per session; what it brings while no call listens is refused) and ends with the session
or the engine."""
import gc
import logging
import threading
import time

import pytest

import mcplink
from conftest import API_KEY, CERTS, attach_server, control_log, new_engine, start_fixture, stop_fixture

ERAS = ["v1", "v2"]


def open_engine(tmp_path, server_v1, server_v2, **options):
    """An engine with tenant acme, user ann (admin), servers v1 and v2 on ann's assistant bot."""
    e = new_engine(tmp_path, **options)
    s = e.as_system()
    s.settings.set(allow_private_urls=True)
    s.tenant.create(name="acme")
    s.user.create(tenant="acme", name="ann", role="admin")
    ann = e.as_user("acme", "ann")
    ast = ann.assistant.create(name="bot")
    for name, line in (("v1", server_v1), ("v2", server_v2)):
        attach_server(ann, ast["id"], name, line)
    return e, ast["id"]


def call_tool(engine, assistant, era, tool, arguments=None, call=None):
    ann = engine.as_user("acme", "ann").with_call(call)
    return ann.tool.call(assistant=assistant, tool=f"{era}__{tool}", arguments=arguments or {})


def slow_call_in_flight(engine, bot, call, ms, line, out, key):
    """Tool s__slow (MS ms) through CALL on a thread, returned once the server has the call;
    out[key] becomes its result, or the error it raised."""
    def run():
        try:
            out[key] = call_tool(engine, bot, "s", "slow", {"ms": ms}, call=call)
        except BaseException as err:  # noqa: BLE001
            out[key] = err
    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
            "tools/call" in str(q) for q in control_log(line)["requests"][-3:]):
        time.sleep(0.05)
    time.sleep(0.3)
    return t


@pytest.mark.parametrize("era", ERAS)
def test_the_engine_handler_answers_calls_without_their_own(tmp_path, server_v1, server_v2, era):
    asked = []

    def on_input(req: mcplink.InputRequest):
        gc.collect()          # the C callback must stay alive for the engine's life
        asked.append(req)
        return req.accept({"name": "Eve"})
    e, bot = open_engine(tmp_path, server_v1, server_v2, on_input=on_input)
    del on_input
    gc.collect()
    try:
        r = call_tool(e, bot, era, "ask_form", {"message": "Engine?"})
        assert r["structuredContent"]["action"] == "accept"
        assert r["structuredContent"]["content"]["name"] == "Eve"
        assert r["structuredContent"]["content"]["age"] == 30, "the form's defaults are filled in"
        assert len(asked) == 1 and asked[0].message == "Engine?" and asked[0].server["name"] == era
        # a Call with a handler of its own: that one answers, not the engine's
        own = mcplink.Call(on_input=lambda req: req.decline())
        r = call_tool(e, bot, era, "ask_form", call=own)
        assert r["structuredContent"] == {"action": "decline"} and len(asked) == 1
        # a Call with only progress callbacks: the engine's handler answers
        r = call_tool(e, bot, era, "ask_form", call=mcplink.Call(on_progress=lambda ev: None))
        assert r["structuredContent"]["content"]["name"] == "Eve" and len(asked) == 2
    finally:
        e.close()


@pytest.mark.parametrize("era", ERAS)
def test_a_raising_engine_handler_is_logged_and_cancels_the_question(tmp_path, server_v1, server_v2, era, caplog):
    def on_input(req):
        raise RuntimeError("the user interface is gone")
    e, bot = open_engine(tmp_path, server_v1, server_v2, on_input=on_input)
    try:
        with caplog.at_level(logging.ERROR, logger="mcplink"):
            r = call_tool(e, bot, era, "ask_form")
        assert r["structuredContent"] == {"action": "cancel"}, "no answer: the elicitation is cancelled"
        logged = [rec.getMessage() for rec in caplog.records if rec.name == "mcplink"]
        assert any("on_input" in m and "the user interface is gone" in m for m in logged), logged
        # the engine goes on
        r = call_tool(e, bot, era, "echo", {"text": "still"})
        assert r["structuredContent"]["text"] == "still"
    finally:
        e.close()


def test_a_bad_answer_of_the_engine_handler_is_logged(tmp_path, server_v1, server_v2, caplog):
    e, bot = open_engine(tmp_path, server_v1, server_v2, on_input=lambda req: ["not", "an", "object"])
    try:
        with caplog.at_level(logging.ERROR, logger="mcplink"):
            r = call_tool(e, bot, "v1", "ask_form")
        assert r["structuredContent"] == {"action": "cancel"}
        assert any("must return a mapping" in rec.getMessage() for rec in caplog.records), caplog.records
    finally:
        e.close()


def test_engine_handler_for_sampling_when_asked_for(tmp_path, server_v1, server_v2):
    asked = []

    def on_input(req):
        asked.append(req.method)
        if req.method == "sampling/createMessage":
            return {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "test-model"}
        return req.decline()
    e, bot = open_engine(tmp_path, server_v1, server_v2, on_input=on_input,
                         input_methods=("elicitation", "sampling"))
    try:
        r = call_tool(e, bot, "v1", "ask_sampling")
        assert "test-model" in r["content"][0]["text"] and asked == ["sampling/createMessage"]
    finally:
        e.close()


def test_engine_handler_arguments_are_checked(tmp_path):
    with pytest.raises(TypeError, match="on_input must be callable"):
        new_engine(tmp_path, on_input="yes")
    with pytest.raises(ValueError, match="unknown input method 'mail'"):
        new_engine(tmp_path, on_input=lambda req: None, input_methods=("elicitation", "mail"))


@pytest.fixture(scope="module")
def server_v1_session():
    """The SDK v1 fixture with ask_session, which asks on the session's GET stream."""
    line = start_fixture("server-v1", "--api-key", API_KEY, "--session-ask")
    yield line
    stop_fixture(line)


def test_the_session_stream_and_a_cancelled_call(tmp_path, server_v1, server_v2, server_v1_session):
    asked = []

    def on_input(req):
        asked.append(req.message)
        return req.accept({"name": "Sam"})
    e, bot = open_engine(tmp_path, server_v1, server_v2, on_input=on_input)
    try:
        ann = e.as_user("acme", "ann")
        attach_server(ann, bot, "s", server_v1_session, timeout_ms=15000)
        r = call_tool(e, bot, "s", "ask_session")
        assert r["structuredContent"] == {"action": "accept", "content": {"name": "Sam", "color": "blue"}}
        assert asked == ["Name, please (session stream)"]
        # a call cancelled from another thread while it listens: it ends at once, and the session's
        # GET stream is kept for the next call
        c = mcplink.Call()
        out = {}
        t = slow_call_in_flight(e, bot, c, 30000, server_v1_session, out, "error")
        c.cancel()
        t.join(10)
        assert not t.is_alive() and isinstance(out.get("error"), mcplink.Timeout) and out["error"].reason == "cancelled"
        # the server allows one GET stream per session: the next call's question reaches the engine
        # on the stream the cancelled call kept
        r = call_tool(e, bot, "s", "ask_session")
        assert r["structuredContent"]["content"]["name"] == "Sam" and len(asked) == 2
    finally:
        e.close()


def test_a_session_question_among_several_calls_is_refused(tmp_path, server_v1, server_v2, server_v1_session):
    """A question on the session's stream names no call: while two calls of the session are in
    flight it could be either's (another user's, when they share a credential), so nobody is asked
    and the server gets the refusal; alone again, the call's own handler is asked."""
    e, bot = open_engine(tmp_path, server_v1, server_v2)
    try:
        ann = e.as_user("acme", "ann")
        attach_server(ann, bot, "s", server_v1_session, timeout_ms=15000)
        seen_a, seen_b = [], []
        a = mcplink.Call(on_input=lambda req: seen_a.append(req) or req.accept({"name": "A"}))
        b = mcplink.Call(on_input=lambda req: seen_b.append(req) or req.accept({"name": "B"}))
        out = {}
        t = slow_call_in_flight(e, bot, a, 4000, server_v1_session, out, "a")
        r = call_tool(e, bot, "s", "ask_session", call=b)
        t.join(20)
        assert r["structuredContent"] == {"action": "cancel"}, r
        assert seen_a == [] and seen_b == [], "neither call's handler saw a question it cannot be sure is its own"
        assert isinstance(out.get("a"), dict), out
        r = call_tool(e, bot, "s", "ask_session", call=b)
        assert r["structuredContent"]["content"]["name"] == "B" and len(seen_b) == 1 and seen_a == []
    finally:
        e.close()


def control(line: dict, path: str, post: bool = False) -> dict:
    """A fixture's control endpoint (GET, or POST with no body) as JSON."""
    import json
    import ssl
    import urllib.request
    ctx = ssl.create_default_context(cafile=str(CERTS / "ca.pem"))
    rq = urllib.request.Request(line["control"] + path, method="POST" if post else "GET", data=b"" if post else None)
    with urllib.request.urlopen(rq, context=ctx, timeout=10) as r:
        return json.loads(r.read())


def until(fn, seconds=10):
    """fn() once it is true, polled for up to seconds (the last value otherwise)."""
    deadline = time.monotonic() + seconds
    v = fn()
    while not v and time.monotonic() < deadline:
        time.sleep(0.05)
        v = fn()
    return v


def test_the_session_stream_is_kept_between_calls(tmp_path, server_v1, server_v2):
    """A session's GET stream is opened once and kept between calls (a server that allows one per
    session answers a second GET with 409); a question the server sends there while no call
    listens could be anyone's and nobody can be asked: it is refused when the next call takes the
    stream back, and that call's own question still reaches its handler; when the session ends
    (the server reconfigured) or the engine closes, no stream stays open (the server here takes no
    DELETE, so it is the client that ends the stream)."""
    line = start_fixture("server-v1", "--api-key", API_KEY, "--session-ask", "--no-delete")
    asked = []

    def on_input(req):
        asked.append(req.message)
        return req.accept({"name": "Sam"})
    e, bot = open_engine(tmp_path, server_v1, server_v2, on_input=on_input)
    closed = False
    try:
        ann = e.as_user("acme", "ann")
        srv = attach_server(ann, bot, "s", line, timeout_ms=15000)
        assert control(line, "/streams")["opened"] == 0, "discovery opens no stream"
        for i in range(3):
            r = call_tool(e, bot, "s", "ask_session")
            assert r["structuredContent"]["content"]["name"] == "Sam", r
        assert asked == ["Name, please (session stream)"] * 3
        st = control(line, "/streams")
        assert st["opened"] == 1 and st["open"] == 1, f"one GET for three calls, kept open: {st}"
        # the server asks on the kept stream while no call is in flight: refused at the next call
        assert control(line, "/ask-session", post=True)["sessions"] == 1
        time.sleep(0.3)  # the question reaches the kept stream before the next call takes it
        r = call_tool(e, bot, "s", "ask_session")
        assert r["structuredContent"]["content"]["name"] == "Sam", r
        assert asked == ["Name, please (session stream)"] * 4, "nobody was asked the question nobody was there for"
        outcome = until(lambda: control(line, "/streams")["asked"])
        assert outcome == [{"result": {"action": "cancel"}}], outcome
        r = call_tool(e, bot, "s", "echo", {"text": "after"})
        assert r["structuredContent"]["text"] == "after"
        assert control(line, "/streams")["opened"] == 1
        # a new endpoint (the same server, another URL): the old session ends, and its stream
        ann.server.update(id=srv["id"], url=line["url"] + "?v=2")
        assert until(lambda: control(line, "/streams")["open"] == 0), control(line, "/streams")
        r = call_tool(e, bot, "s", "ask_session")
        assert r["structuredContent"]["content"]["name"] == "Sam" and len(asked) == 5
        st = control(line, "/streams")
        assert st["opened"] == 2 and st["open"] == 1, st
        # the engine closes: the kept stream with it
        e.close()
        closed = True
        assert until(lambda: control(line, "/streams")["open"] == 0), control(line, "/streams")
    finally:
        if not closed:
            e.close()
        stop_fixture(line)
