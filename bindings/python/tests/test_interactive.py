"""Interactive calls through the binding, against the SDK v1 (handshake era) and v2 (2026-07-28)
fixture servers: progress events, questions answered by a Python handler (accept, decline, a
handler that raises), continuations without a handler, and a cancel from another thread that
reaches the server."""
import asyncio
import gc
import threading
import time

import pytest

import mcplink
from conftest import control_log

ERAS = ["v1", "v2"]


def call_tool(engine, eras, era, tool, arguments=None, call=None, **kw):
    ann = engine.as_user("acme", "ann").with_call(call)
    return ann.tool.call(assistant=eras["assistant"], tool=f"{era}__{tool}", arguments=arguments or {}, **kw)


@pytest.mark.parametrize("era", ERAS)
def test_progress_events_arrive_as_they_come(engine, eras, era):
    progress, events, when = [], [], []

    def on_progress(ev):
        gc.collect()          # the C callbacks must stay alive whatever the collector does
        progress.append(ev)
        when.append(time.monotonic())
    c = mcplink.Call(on_progress=on_progress, on_event=events.append)
    r = call_tool(engine, eras, era, "progress", {"steps": 3, "interval_ms": 300}, call=c)
    done = time.monotonic()
    assert r["content"][0]["text"] == "done after 3 steps"
    assert [e["progress"] for e in progress] == [1, 2, 3], progress
    assert all(e["type"] == "progress" and e["total"] == 3 for e in progress)
    assert progress[0]["message"] == "step 1 of 3" and progress[0]["server"]["name"] == era
    assert events == progress, "on_event sees every event"
    assert done - when[0] > 0.3, "the first event came while the call still ran, not with its result"
    assert not c.running and not c.cancelled
    # the same Call serves the next call
    call_tool(engine, eras, era, "progress", {"steps": 1}, call=c)
    assert len(progress) == 4


@pytest.mark.parametrize("era", ERAS)
def test_a_form_answered_by_the_python_handler(engine, eras, era):
    asked = []

    def on_input(req: mcplink.InputRequest):
        asked.append(req)
        return req.accept({"name": "Ann", "color": "blue"})
    r = call_tool(engine, eras, era, "ask_form", {"message": "Who are you?"}, call=mcplink.Call(on_input=on_input))
    assert len(asked) == 1
    req = asked[0]
    assert req.method == "elicitation/create" and req.mode == "form" and req.message == "Who are you?"
    assert req.server["name"] == era and req.key
    assert set(req.schema["properties"]) == {"name", "age", "color", "subscribe", "email"}
    assert req.schema["properties"]["age"]["default"] == 30 and req.schema["required"] == ["name"]
    assert r["structuredContent"]["action"] == "accept"
    content = r["structuredContent"]["content"]
    assert content["name"] == "Ann" and content["color"] == "blue"
    assert content["age"] == 30, "fields left out get the schema's default"


@pytest.mark.parametrize("era", ERAS)
def test_decline_and_no_answer(engine, eras, era):
    r = call_tool(engine, eras, era, "ask_form", call=mcplink.Call(on_input=lambda req: req.decline()))
    assert r["structuredContent"] == {"action": "decline"}
    r = call_tool(engine, eras, era, "ask_form", call=mcplink.Call(on_input=lambda req: None))
    assert r["structuredContent"] == {"action": "cancel"}, "no answer is cancel"
    with pytest.raises(mcplink.InvalidArgument) as e:
        call_tool(engine, eras, era, "ask_form", call=mcplink.Call(on_input=lambda req: req.accept({"age": "old"})))
    assert "content.age" in str(e.value), "an answer that does not fit the form names the field"


@pytest.mark.parametrize("era", ERAS)
def test_url_mode_reaches_the_handler_as_data(engine, eras, era):
    asked = []

    def on_input(req):
        asked.append(req)
        return req.accept()
    r = call_tool(engine, eras, era, "ask_url", call=mcplink.Call(on_input=on_input))
    assert asked[0].mode == "url" and asked[0].url == "https://auth.example.com/connect?flow=42"
    assert asked[0]["url_host"] == "auth.example.com" and asked[0].server["name"] == era
    assert r["structuredContent"] == {"action": "accept"}


class Boom(Exception):
    pass


@pytest.mark.parametrize("era", ERAS)
def test_a_handler_that_raises_fails_the_call_not_the_process(engine, eras, era):
    def on_input(req):
        raise Boom("the handler broke")
    c = mcplink.Call(on_input=on_input)
    with pytest.raises(Boom, match="the handler broke"):
        call_tool(engine, eras, era, "ask_form", call=c)
    assert not c.running
    # answers that are not JSON objects are the handler's error too
    for bad, kind in [(["accept"], TypeError), ({"action": "accept", "content": {"x": object()}}, TypeError),
                      ({"action": "accept", "content": {"name": "x" * (1 << 20)}}, mcplink.TooLarge)]:
        with pytest.raises(kind):
            call_tool(engine, eras, era, "ask_form", call=mcplink.Call(on_input=lambda req, b=bad: b))
    # the engine goes on serving, the same Call too
    c.on_input = lambda req: req.decline()
    assert call_tool(engine, eras, era, "ask_form", call=c)["structuredContent"] == {"action": "decline"}


@pytest.mark.parametrize("era", ERAS)
def test_an_event_callback_that_raises_cancels_the_call(engine, eras, era):
    def on_progress(ev):
        raise Boom("progress handler broke")
    t0 = time.monotonic()
    with pytest.raises(Boom):
        call_tool(engine, eras, era, "progress", {"steps": 40, "interval_ms": 500},
                  call=mcplink.Call(on_progress=on_progress))
    took = time.monotonic() - t0
    assert took < 12, f"the 20 s call was cancelled at its first event, not run to its end ({took:.1f} s)"


@pytest.mark.parametrize("era", ERAS)
def test_callbacks_may_call_the_engine_but_not_close_it(engine, eras, era):
    seen = []

    def on_input(req):
        seen.append(len(engine.as_user("acme", "ann").server.list()["items"]))
        return req.decline()
    assert call_tool(engine, eras, era, "ask_form", call=mcplink.Call(on_input=on_input))["structuredContent"]["action"] == "decline"
    assert seen == [2]
    with pytest.raises(RuntimeError, match="inside a call's callback"):
        call_tool(engine, eras, era, "ask_form", call=mcplink.Call(on_input=lambda req: engine.close()))
    assert not engine.closed


@pytest.mark.parametrize("era", ERAS)
def test_continuation_without_a_handler(engine, eras, era):
    events = []
    ann = engine.as_user("acme", "ann")
    # a Call with events but no input handler: the call still waits for its user
    r = call_tool(engine, eras, era, "ask_twice", call=mcplink.Call(on_event=events.append))
    assert mcplink.input_required(r) and r["continuation"]
    (req,) = r["input_requests"]
    assert req["mode"] == "form" and req["message"] == "First question" and req["server"]["name"] == era
    r2 = ann.resume(r, {req["key"]: {"action": "accept", "content": {"first": "one"}}})
    assert mcplink.input_required(r2), "the second round asks again"
    (req2,) = r2["input_requests"]
    assert req2["message"] == "You said one. Second question"
    r3 = ann.resume(r2["continuation"], {req2["key"]: mcplink.InputRequest.accept({"second": "two"})}, kind="tool.call")
    assert r3["structuredContent"] == {"first": "one", "second": "two"}
    # single use: a replay is not_found
    with pytest.raises(mcplink.NotFound):
        ann.resume(r2, {req2["key"]: {"action": "decline"}})
    # asyncio, and a decline
    r = call_tool(engine, eras, era, "ask_form")
    (req,) = r["input_requests"]
    r = asyncio.run(ann.aio.resume(r, {req["key"]: {"action": "decline"}}))
    assert r["structuredContent"] == {"action": "decline"}
    with pytest.raises(ValueError, match="input_required result"):
        ann.resume({"content": []}, {})
    with pytest.raises(ValueError, match="tool, prompt or resource"):
        ann.resume("x", {}, kind="nope")


def _cancelled_count(line):
    return len(control_log(line)["cancelled"])


@pytest.mark.parametrize("era", ERAS)
def test_cancel_from_another_thread_reaches_the_server(engine, eras, era):
    before = _cancelled_count(eras[era])
    c = mcplink.Call()
    out = {}

    def run():
        t0 = time.monotonic()
        try:
            out["result"] = call_tool(engine, eras, era, "slow", {"ms": 30000}, call=c, timeout_ms=60000)
        except BaseException as e:  # noqa: BLE001
            out["error"] = e
        out["took"] = time.monotonic() - t0
    t = threading.Thread(target=run)
    t.start()
    _wait_for_tool_call(eras[era])
    time.sleep(0.3)
    assert c.running
    with pytest.raises(RuntimeError, match="running a call already"):
        call_tool(engine, eras, era, "echo", {"text": "x"}, call=c)
    t_cancel = time.monotonic()
    c.cancel()
    t.join(30)
    after_cancel = time.monotonic() - t_cancel
    assert not t.is_alive()
    assert isinstance(out.get("error"), mcplink.Timeout), out
    assert out["error"].reason == "cancelled"
    assert after_cancel < 5, f"the 30 s call returned {after_cancel:.1f} s after cancel"
    assert c.cancelled and not c.running
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _cancelled_count(eras[era]) == before:
        time.sleep(0.1)
    assert _cancelled_count(eras[era]) == before + 1, "the server stopped working on the call"
    # a cancelled Call stays cancelled; a new one runs
    with pytest.raises(mcplink.Timeout):
        call_tool(engine, eras, era, "echo", {"text": "x"}, call=c)
    assert call_tool(engine, eras, era, "echo", {"text": "x"}, call=mcplink.Call())["structuredContent"]["text"] == "x"


def test_cancel_before_the_call_starts(engine, eras):
    c = mcplink.Call()
    c.cancel()
    with pytest.raises(mcplink.Timeout) as e:
        call_tool(engine, eras, "v2", "echo", {"text": "x"}, call=c)
    assert e.value.reason == "cancelled"


def _wait_for_tool_call(line, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any("tools/call" in str(r) for r in control_log(line)["requests"][-5:]):
            return
        time.sleep(0.05)
    raise AssertionError("the server never saw the tools/call")


def test_a_cancelled_task_cancels_its_call(engine, eras):
    before = _cancelled_count(eras["v1"])
    c = mcplink.Call()
    ann = engine.as_user("acme", "ann").aio.with_call(c)

    async def main():
        task = asyncio.create_task(ann.tool.call(assistant=eras["assistant"], tool="v1__slow",
                                                 arguments={"ms": 30000}))
        await asyncio.to_thread(_wait_for_tool_call, eras["v1"])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    asyncio.run(main())
    assert c.cancelled
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (c.running or _cancelled_count(eras["v1"]) == before):
        time.sleep(0.1)
    assert not c.running, "the call in the engine ended"
    assert _cancelled_count(eras["v1"]) == before + 1, "the server was told"


def test_call_arguments_are_checked():
    with pytest.raises(TypeError, match="on_input must be callable"):
        mcplink.Call(on_input="yes")
    with pytest.raises(ValueError, match="unknown input method 'files'"):
        mcplink.Call(input_methods=["elicitation", "files"])
    assert mcplink.InputRequest.decline() == {"action": "decline"}
    assert mcplink.InputRequest.accept({"a": 1}) == {"action": "accept", "content": {"a": 1}}
