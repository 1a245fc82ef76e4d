"""Threads and asyncio on one engine: nothing lost, the GIL released, cancellation, close under load."""
import asyncio
import threading
import time

import pytest

import mcplink


def echo(client, assistant, text):
    r = client.tool.call(assistant=assistant, tool="CRM__echo", arguments={"text": text})
    return r["structuredContent"]["text"]


def test_sixteen_threads_one_engine_nothing_lost(engine, crm):
    ann = engine.as_user("acme", "ann")
    got, errors = {}, []

    def worker(t):
        try:
            for i in range(12):
                key = f"{t}-{i}"
                got[key] = echo(ann, crm["assistant"], key)
                if i % 3 == 0:
                    ann.server.create(name=f"s-{key}")
        except BaseException as x:  # noqa: BLE001
            errors.append(x)
    ts = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors[:3]
    assert len(got) == 16 * 12 and all(k == v for k, v in got.items())
    names = {s["name"] for s in ann.server.list(limit=500)["items"]}
    assert {f"s-{t}-{i}" for t in range(16) for i in range(0, 12, 3)} <= names


def test_two_hundred_concurrent_asyncio_calls(engine, crm):
    ann = engine.as_user("acme", "ann").aio
    ticks = []

    async def ticker(stop):
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.005)

    async def main():
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(stop))
        calls = [ann.tool.call(assistant=crm["assistant"], tool="CRM__echo", arguments={"text": str(i)})
                 for i in range(150)]
        calls += [ann.server.create(name=f"a-{i}") for i in range(50)]
        t0 = time.monotonic()
        res = await asyncio.gather(*calls)
        t1 = time.monotonic()
        stop.set()
        await tick
        return res, t0, t1
    res, t0, t1 = asyncio.run(main())
    assert [r["structuredContent"]["text"] for r in res[:150]] == [str(i) for i in range(150)]
    assert [r["name"] for r in res[150:]] == [f"a-{i}" for i in range(50)]
    assert len({r["id"] for r in res[150:]}) == 50
    during = [t for t in ticks if t0 < t < t1]
    assert len(during) >= 5, "the event loop kept running while the calls ran (they run off the loop)"


def test_the_gil_is_released_during_a_call(engine, crm):
    ann = engine.as_user("acme", "ann")
    inside, done = threading.Event(), []

    def slow():
        inside.set()
        ann.tool.call(assistant=crm["assistant"], tool="CRM__slow", arguments={"ms": 1200})
        done.append(time.monotonic())
    t = threading.Thread(target=slow)
    t.start()
    inside.wait(10)
    ticks = []
    while t.is_alive():
        ticks.append(time.monotonic())
        time.sleep(0.01)
    t.join()
    assert done, "the slow call finished"
    before_end = [x for x in ticks if x < done[0] - 0.1]
    assert len(before_end) >= 20, f"this thread ran only {len(before_end)} times during the engine call"


def test_cancelling_the_awaiting_task_stops_waiting(engine, crm):
    ann = engine.as_user("acme", "ann")

    async def main():
        task = asyncio.create_task(ann.aio.tool.call(
            assistant=crm["assistant"], tool="CRM__slow", arguments={"ms": 3000}, timeout_ms=20000))
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        waited = time.monotonic() - t0
        # the engine serves other calls meanwhile
        info = await ann.aio.engine.info()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ann.aio.tool.call(assistant=crm["assistant"], tool="CRM__slow",
                                                     arguments={"ms": 3000}), 0.3)
        return waited, info
    waited, info = asyncio.run(main())
    assert waited < 1.0, f"the cancelled task waited {waited:.2f} s"
    assert info["version"]
    t0 = time.monotonic()
    engine.close()                   # waits for the calls still running in the engine
    assert time.monotonic() - t0 < 30


def test_close_while_calls_run(engine, crm):
    ann = engine.as_user("acme", "ann")
    results = {}
    started = threading.Barrier(7)

    def worker(i):
        started.wait(10)
        try:
            results[i] = ann.tool.call(assistant=crm["assistant"], tool="CRM__slow", arguments={"ms": 30000})
        except BaseException as x:  # noqa: BLE001
            results[i] = x
    loops = []

    def looper():
        n = 0
        try:
            while True:
                ann.engine.info()
                n += 1
        except mcplink.EngineClosed:
            loops.append(n)
        except mcplink.Timeout as x:  # an engine.info in flight when close began: cancelled with the rest
            loops.append(n if x.reason == "cancelled" else -1)
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(6)] + [threading.Thread(target=looper)]
    for t in ts:
        t.start()
    started.wait(10)
    # close once the six slow calls are in the engine (however loaded the machine), not after a guess
    until = time.monotonic() + 20
    while engine._state.inflight < 6 and time.monotonic() < until:
        time.sleep(0.02)
    time.sleep(0.2)
    t0 = time.monotonic()
    engine.close()
    took = time.monotonic() - t0
    for t in ts:
        t.join(30)
    assert not any(t.is_alive() for t in ts), "no call hangs after close"
    assert took < 10, f"close took {took:.1f} s: the 30 s calls in flight were not cancelled"
    cancelled = [r for r in results.values() if isinstance(r, mcplink.Timeout) and r.reason == "cancelled"]
    others = [r for r in results.values() if not isinstance(r, (mcplink.Timeout, mcplink.EngineClosed))]
    assert cancelled and not others, results
    assert loops and loops[0] > 0, f"the looping caller stopped with EngineClosed or a cancelled call: {loops}"
    with pytest.raises(mcplink.EngineClosed):
        ann.server.list()
    with pytest.raises(mcplink.EngineClosed):
        asyncio.run(ann.aop("server.list"))


def test_aclose_keeps_the_loop_running(engine, crm):
    # close waits for a call whose input handler runs (the engine does not interrupt it)
    in_handler = threading.Event()

    def on_input(req):
        in_handler.set()
        time.sleep(0.8)
        return req.decline()
    ann = engine.as_user("acme", "ann").aio.with_call(mcplink.Call(on_input=on_input))

    async def main():
        call = asyncio.create_task(ann.tool.call(assistant=crm["assistant"], tool="CRM__ask_form"))
        await asyncio.to_thread(in_handler.wait, 10)
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)
        tk = asyncio.create_task(tick())
        await engine.aclose()
        tk.cancel()
        try:
            return await call, ticks
        except mcplink.Error as e:
            return e, ticks
    res, ticks = asyncio.run(main())
    assert isinstance(res, mcplink.Timeout) and res.reason == "cancelled", res
    assert ticks >= 10 and engine.closed, "the event loop ran while aclose waited"


def test_async_context_manager(tmp_path):
    from conftest import new_engine

    async def main():
        async with new_engine(tmp_path) as e:
            r = await e.aop("engine.info", system=True)
        return e, r
    e, r = asyncio.run(main())
    assert r["version"] and e.closed
