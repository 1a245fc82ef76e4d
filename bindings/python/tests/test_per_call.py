"""The binding's own guarantees, shown against a stand-in library whose calls block until told:
close() never lets mcpl_close run while a call is inside the library, and with the per-call API
(mcpl_call_new / mcpl_op_call / mcpl_call_cancel / mcpl_call_free, detected in the library) a
cancelled aop and close() cancel the very call handle the engine is running, and every handle is
freed. test_interactive.py shows the same against the real library and servers."""
import asyncio
import json
import threading
import time

import pytest

import mcplink
from mcplink._library import Library


class StandIn(Library):
    """Implements Library's methods in Python; ``block`` ops wait for cancel or release."""

    def __init__(self, has_calls: bool) -> None:  # no super(): there is no C library behind it
        self.path, self.version, self.has_calls = "stand-in", "0", has_calls
        self.lock = threading.Lock()
        self.events: list[tuple] = []
        self.inside = 0
        self.next = 100
        self.cancel_events: dict[int, threading.Event] = {}
        self.release = threading.Event()
        self.freed: set[int] = set()

    def log(self, *ev):
        with self.lock:
            self.events.append((time.monotonic(), *ev))

    def options_new(self): return 1
    def options_set(self, o, name, value): return 0
    def options_set_log(self, o, fn): pass
    def options_free(self, o): pass
    def open(self, o): return 7, None
    def code_name(self, code): return {0: "ok", 9: "timeout"}.get(code, "internal")

    def close(self, e):
        self.log("close", self.inside)

    def call_new(self):
        with self.lock:
            self.next += 1
            self.cancel_events[self.next] = threading.Event()
            return self.next

    def call_cancel(self, call):
        self.log("cancel", call)
        self.cancel_events[call].set()
        return 0

    def call_free(self, call):
        assert call not in self.freed, "freed twice"
        self.freed.add(call)

    def _run(self, name, call):
        with self.lock:
            self.inside += 1
        try:
            self.log("start", name.decode(), call)
            if name == b"block":
                ev = self.cancel_events[call] if call else None
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and not self.release.is_set() and not (ev and ev.is_set()):
                    time.sleep(0.01)
                if ev and ev.is_set():
                    return 9, json.dumps({"error": {"code": "timeout", "message": "cancelled", "reason": "cancelled"}})
            return 0, json.dumps({"op": name.decode(), "call": call})
        finally:
            with self.lock:
                self.inside -= 1
            self.log("end", name.decode(), call)

    def op(self, e, actor, name, args):
        return self._run(name, None)

    def op_call(self, e, actor, name, args, call):
        return self._run(name, call)


def test_close_waits_until_no_call_is_inside_the_library():
    lib = StandIn(has_calls=False)
    e = mcplink.Engine(db="x", library=lib)
    ts = [threading.Thread(target=lambda: e.op("block", system=True)) for _ in range(4)]
    for t in ts:
        t.start()
    while lib.inside < 4:
        time.sleep(0.01)
    threading.Timer(0.3, lib.release.set).start()
    e.close()
    for t in ts:
        t.join(10)
    closes = [ev for ev in lib.events if ev[1] == "close"]
    assert closes == [closes[0]] and closes[0][2] == 0, "mcpl_close ran once, with no call inside"
    last_end = max(ev[0] for ev in lib.events if ev[1] == "end")
    assert closes[0][0] >= last_end


def test_without_the_per_call_api_a_cancelled_task_stops_waiting():
    lib = StandIn(has_calls=False)
    e = mcplink.Engine(db="x", library=lib)

    async def main():
        t = asyncio.create_task(e.aop("block", system=True))
        await asyncio.sleep(0.1)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
    asyncio.run(main())
    assert not [ev for ev in lib.events if ev[1] == "cancel"]
    lib.release.set()
    e.close()


def test_cancelled_aop_cancels_its_own_call_in_the_engine():
    lib = StandIn(has_calls=True)
    e = mcplink.Engine(db="x", library=lib)

    async def main():
        other = asyncio.create_task(e.aop("quick", system=True))
        t = asyncio.create_task(e.aop("block", system=True))
        while not any(ev[1] == "start" and ev[2] == "block" for ev in lib.events):
            await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        return await other
    r = asyncio.run(main())
    assert r["op"] == "quick"
    started = next(ev[3] for ev in lib.events if ev[1] == "start" and ev[2] == "block")
    cancelled = [ev[2] for ev in lib.events if ev[1] == "cancel"]
    assert cancelled == [started], "the handle of the running call was cancelled, and only it"
    deadline = time.monotonic() + 5
    while not any(ev[1] == "end" and ev[2] == "block" for ev in lib.events) and time.monotonic() < deadline:
        time.sleep(0.01)
    e.close()
    assert lib.freed == set(range(101, lib.next + 1)), "every call handle was freed"


def test_close_cancels_calls_in_flight_when_it_can():
    lib = StandIn(has_calls=True)
    e = mcplink.Engine(db="x", library=lib)
    out = []
    ts = [threading.Thread(target=lambda: out.append(_catch(lambda: e.op("block", system=True))))
          for _ in range(3)]
    for t in ts:
        t.start()
    while lib.inside < 3:
        time.sleep(0.01)
    t0 = time.monotonic()
    e.close()
    assert time.monotonic() - t0 < 2, "close was prompt: the calls were cancelled"
    for t in ts:
        t.join(10)
    assert len([ev for ev in lib.events if ev[1] == "cancel"]) == 3
    assert all(isinstance(x, mcplink.Timeout) and x.reason == "cancelled" for x in out), out
    assert len(lib.freed) == 3


def test_a_call_cancelled_before_it_starts_never_runs():
    lib = StandIn(has_calls=True)
    e = mcplink.Engine(db="x", library=lib, pool_size=1)

    async def main():
        first = asyncio.create_task(e.aop("block", system=True))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(e.aop("never", system=True))   # waits for the one worker
        await asyncio.sleep(0.05)
        queued.cancel()
        lib.release.set()
        await first
        with pytest.raises(asyncio.CancelledError):
            await queued
    asyncio.run(main())
    e.close()
    assert not any(ev[1] == "start" and ev[2] == "never" for ev in lib.events)
    assert lib.freed == set(range(101, lib.next + 1)), "every handle made was freed"


def _catch(fn):
    try:
        return fn()
    except Exception as x:  # noqa: BLE001
        return x
