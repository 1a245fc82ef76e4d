"""mcplink.engine: the engine, its calls (sync and asyncio), and clients bound to an actor.

The C library does the work; each call releases the GIL (ctypes does) so threads run calls in
parallel, and ``aop`` runs the call on the engine's own worker threads, off the event loop.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Optional

from ._library import (EVENT_FN, INPUT_ELICITATION, INPUT_FN, INPUT_ROOTS, INPUT_SAMPLING, LOG_FN, Actor,
                       Library, load_library)
from .errors import EngineClosed, Internal, InvalidArgument, Timeout, error_class, error_from

__all__ = ["Engine", "Client", "Call", "InputRequest", "OPTIONS"]

#: The engine options this binding knows, as in core/mcplink.h (others are passed to the library,
#: which rejects names it does not know).
OPTIONS = ("db", "key_file", "policies", "lua_dir", "ca_file", "pool_size", "log_level", "log_file",
           "oauth_redirect_uri", "oauth_client_metadata_url")
_OPTION_HINTS = {
    "pool_size": "an integer from 1 to 256",
    "log_level": "one of debug, info, warn, error",
}
_POOL_DEFAULT = 8
_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
               "error": logging.ERROR}

# Set while this thread runs the engine's log callback: the engine holds its log lock and the
# caller's Lua state then, so a call back into the engine from a log handler would deadlock.
_tls = threading.local()


def _in_log_callback() -> bool:
    return getattr(_tls, "depth", 0) > 0


def _log_callback(logger: logging.Logger) -> Any:
    """The C log callback for one engine: forwards each line to ``logger``, never raises."""
    def on_log(_ud: Any, level: bytes | None, msg: bytes | None) -> None:
        _tls.depth = getattr(_tls, "depth", 0) + 1
        try:
            lvl = _LOG_LEVELS.get((level or b"").decode("ascii", "replace"), logging.WARNING)
            if logger.isEnabledFor(lvl):
                logger.log(lvl, "%s", (msg or b"").decode("utf-8", "replace"))
        except BaseException:  # an exception must never unwind into C
            pass
        finally:
            _tls.depth -= 1
    return LOG_FN(on_log)


def _level_for(logger: logging.Logger) -> str:
    lvl = logger.getEffectiveLevel()
    if lvl <= logging.DEBUG:
        return "debug"
    if lvl <= logging.INFO:
        return "info"
    if lvl <= logging.WARNING:
        return "warn"
    return "error"


def _text(what: str, value: Any) -> bytes:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"{what} must be a string{' or path' if what.startswith('option') else ''}, "
                        f"not {type(value).__name__}")
    s = str(value)
    if "\0" in s:
        raise ValueError(f"{what} contains a NUL character")
    return s.encode("utf-8", "surrogateescape")


def _actor(tenant: str | None, user: str | None, system: bool) -> Actor:
    if system:
        if tenant is not None or user is not None:
            raise ValueError("system=True is the system actor: give no tenant or user")
        return Actor(None, None, 1)
    if tenant is None or user is None:
        raise ValueError("an engine call needs an actor: tenant= and user= (a tenant user), or system=True")
    return Actor(_text("tenant", tenant), _text("user", user), 0)


def _payload(op: str, args: Mapping[str, Any] | None) -> bytes | None:
    if args is None:
        return None
    if not isinstance(args, Mapping):
        raise TypeError(f"arguments of {op} must be a mapping (a JSON object), not {type(args).__name__}")
    try:
        return json.dumps(dict(args), allow_nan=False).encode("ascii")
    except (TypeError, ValueError) as e:
        raise TypeError(f"arguments of {op} are not JSON: {e}") from None


def _result(lib: Library, rc: int, text: str | None) -> dict[str, Any]:
    if text is None:
        raise Internal(f"the engine returned no result (code {lib.code_name(rc)})")
    try:
        value = json.loads(text)
    except ValueError:
        raise Internal(f"the engine returned a result that is not JSON: {text[:200]!r}") from None
    if rc != 0:
        err = value.get("error") if isinstance(value, dict) else None
        if isinstance(err, dict):
            raise error_from(err)
        code = lib.code_name(rc)
        raise error_class(code)(text[:500], code=code)
    return value


_METHOD_BITS = {"elicitation": INPUT_ELICITATION, "sampling": INPUT_SAMPLING, "roots": INPUT_ROOTS}

#: What an input handler returns: an answer (a JSON object), or None for no answer.
Answer = Optional[Mapping[str, Any]]


class InputRequest(dict):  # type: ignore[type-arg]
    """A question a server asks the user during a call, as the engine hands it to the host.

    It is the engine's request object (a dict: README "Interactive calls"), with attributes for its
    fields and helpers that build the answers. Everything in it except ``key``, ``method`` and
    ``server`` comes from the MCP server and is untrusted: escape it before showing it, and never
    open ``url`` without the user.
    """

    @property
    def key(self) -> str:
        """The request's key (``input_responses`` of ``*.continue`` answer it by this key)."""
        return str(self.get("key", ""))

    @property
    def method(self) -> str:
        """``elicitation/create``, ``sampling/createMessage`` or ``roots/list``."""
        return str(self.get("method", ""))

    @property
    def mode(self) -> str | None:
        """For an elicitation: ``form`` or ``url``."""
        return self.get("mode")

    @property
    def message(self) -> str | None:
        """What the server says to the user (untrusted text)."""
        return self.get("message")

    @property
    def schema(self) -> dict[str, Any] | None:
        """Form mode: the requested (restricted) JSON Schema, defaults filled in."""
        return self.get("schema")

    @property
    def url(self) -> str | None:
        """URL mode: the URL to show the user (the engine never opens or fetches it)."""
        return self.get("url")

    @property
    def server(self) -> dict[str, Any]:
        """The MCP server that asks: ``{"id", "name", "url"}``."""
        v = self.get("server")
        return v if isinstance(v, dict) else {}

    @staticmethod
    def accept(content: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The answer ``{"action": "accept", "content": {...}}`` (URL mode: no content)."""
        return {"action": "accept"} if content is None else {"action": "accept", "content": dict(content)}

    @staticmethod
    def decline() -> dict[str, Any]:
        """The answer ``{"action": "decline"}``: the user said no."""
        return {"action": "decline"}

    @staticmethod
    def cancel() -> dict[str, Any]:
        """The answer ``{"action": "cancel"}``: the user dismissed the question."""
        return {"action": "cancel"}


EventHandler = Callable[[dict[str, Any]], Any]
InputHandler = Callable[[InputRequest], Answer]


def _input_bits(input_methods: Iterable[str]) -> int:
    if isinstance(input_methods, str):
        input_methods = (input_methods,)
    bits = 0
    for m in input_methods:
        if m not in _METHOD_BITS:
            raise ValueError(f"unknown input method {m!r} (known: {', '.join(_METHOD_BITS)})")
        bits |= _METHOD_BITS[m]
    return bits


def _answer_input(lib: Library, on_input: InputHandler, text: bytes | None, reply: int | None) -> None:
    """Asks ``on_input`` and hands its answer to the engine (mcpl_reply_set); None: no answer.
    Raises what the handler raised, or for an answer the engine cannot take."""
    req = InputRequest(json.loads((text or b"{}").decode("utf-8", "replace")))
    answer = on_input(req)
    if answer is None:
        return                     # no answer: the elicitation is cancelled, the rest refused
    if inspect.isawaitable(answer):
        getattr(answer, "close", lambda: None)()
        raise TypeError("on_input returned an awaitable: input handlers are synchronous functions")
    if not isinstance(answer, Mapping):
        raise TypeError(f"on_input must return a mapping (a JSON object) or None, not {type(answer).__name__}")
    try:
        data = json.dumps(dict(answer), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise TypeError(f"the answer of on_input is not JSON: {e}") from None
    assert reply
    rc = lib.reply_set(reply, data)
    if rc != 0:
        code = lib.code_name(rc)
        raise error_class(code)(f"the engine refused the answer of on_input ({code}: "
                                f"{'more than 1 MiB' if code == 'too_large' else 'not accepted'})", code=code)


def _engine_input_callback(lib: Library, on_input: InputHandler, logger: logging.Logger) -> Any:
    """The C input handler for a whole engine (mcpl_options_set_input): asks ``on_input``; an
    exception is logged and becomes no answer (an elicitation cancelled, sampling or roots
    refused), never unwinding into C."""
    def on_engine_input(_ud: Any, text: bytes | None, reply: int | None) -> None:
        _tls.call_depth = getattr(_tls, "call_depth", 0) + 1
        try:
            _answer_input(lib, on_input, text, reply)
        except BaseException as e:  # an exception must never unwind into C
            try:
                logger.error("mcplink: the engine's on_input handler failed (the question gets no answer: "
                             "cancelled or refused): %s: %s", type(e).__name__, e)
            except BaseException:
                pass
        finally:
            _tls.call_depth -= 1
    return INPUT_FN(on_engine_input)

# Set while this thread runs a call's event or input callback: engine.close() from there would wait
# for the very call it runs in.
def _in_call_callback() -> bool:
    return getattr(_tls, "call_depth", 0) > 0


class Call:
    """One call's progress and log callbacks, its input handler, and its cancellation.

    Pass it to ``engine.op(..., call=c)``, ``engine.aop(..., call=c)`` or a client's
    ``with_call(c)``; ``c.cancel()`` from any thread, at any time (also before the call starts),
    makes that call return promptly with :class:`mcplink.Timeout` (``reason == "cancelled"``): a
    2026-07-28 server sees its request's stream closed, an older one gets
    ``notifications/cancelled``. A cancelled Call stays cancelled. One Call runs one call at a
    time (it may be reused for the next).

    Callbacks run on the thread that makes the call (for ``aop``: an engine worker thread, not
    the event loop), while the engine waits for them; they may call the engine (another pool
    state serves that call). If a callback raises, the engine gets a safe answer (no answer:
    an elicitation is cancelled, sampling or roots refused), the call is cancelled, and the
    op raises that exception once the engine has returned; nothing unwinds into C.

    Args:
        on_progress: called with each progress event ``{"type": "progress", "progress",
            "total"?, "message"?, "server"}``.
        on_log: called with each log event ``{"type": "log", "level", "logger"?, "data", "server"}``.
        on_event: called with every event (before on_progress / on_log).
        on_input: answers the server's questions now: called with an :class:`InputRequest`,
            returns the answer (``request.accept({...})``, ``request.decline()``,
            ``request.cancel()``, or a sampling/roots result as the MCP spec defines it), or None
            for no answer. Without it, an elicitation makes the op answer
            ``{"resultType": "input_required", "input_requests", "continuation", ...}``
            (carry it on with ``Client.resume``).
        input_methods: which questions ``on_input`` answers: any of ``"elicitation"``,
            ``"sampling"``, ``"roots"`` (default: elicitation only). Only these are declared to
            servers as capabilities for the call.
    """

    def __init__(self, *, on_progress: EventHandler | None = None, on_log: EventHandler | None = None,
                 on_event: EventHandler | None = None, on_input: InputHandler | None = None,
                 input_methods: Iterable[str] = ("elicitation",)) -> None:
        for what, fn in (("on_progress", on_progress), ("on_log", on_log), ("on_event", on_event),
                         ("on_input", on_input)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{what} must be callable, not {type(fn).__name__}")
        bits = _input_bits(input_methods)
        self.on_progress = on_progress
        self.on_log = on_log
        self.on_event = on_event
        self.on_input = on_input
        self._methods = bits
        self._lock = threading.Lock()
        self._cancelled = False
        self._running = False
        self._lib: Library | None = None
        self._handle: int | None = None
        self._fns: tuple[Any, ...] = ()          # the ctypes callbacks, alive while the call runs
        self._error: BaseException | None = None

    @property
    def cancelled(self) -> bool:
        """True once ``cancel()`` was called."""
        return self._cancelled

    @property
    def running(self) -> bool:
        """True while an op runs with this Call."""
        return self._running

    @property
    def interactive(self) -> bool:
        return any(f is not None for f in (self.on_progress, self.on_log, self.on_event, self.on_input))

    def cancel(self) -> None:
        """Cancels the call (thread-safe, idempotent, at any time; also before it starts)."""
        with self._lock:
            self._cancelled = True
            if self._handle is not None and self._lib is not None:
                self._lib.call_cancel(self._handle)

    def _abort(self) -> None:
        """Cancels the running call only (engine.close): the Call stays usable elsewhere."""
        with self._lock:
            if self._handle is not None and self._lib is not None:
                self._lib.call_cancel(self._handle)

    # ---- the engine side: start, run, finish -------------------------------------------------

    def _start(self, lib: Library) -> bool:
        """Claims this Call for one op and makes its handle; False when it is cancelled already."""
        has_interactive = getattr(lib, "has_interactive", False)
        if self.interactive and not has_interactive:
            raise NotImplementedError(f"{lib.path} has no interactive calls (mcpl_call_set_events, "
                                      "mcpl_call_set_input): progress, log and input callbacks need a newer libmcplink")
        with self._lock:
            if self._running:
                raise RuntimeError("this Call is running a call already: use one Call per concurrent call")
            if self._cancelled:
                return False
            self._running = True
            self._error = None
            self._lib = lib
        try:
            if lib.has_calls:
                h = lib.call_new()
                if not h:
                    raise MemoryError("mcpl_call_new failed")
                fns: list[Any] = []
                if has_interactive and (self.on_progress or self.on_log or self.on_event):
                    fns.append(EVENT_FN(self._on_event))
                    lib.call_set_events(h, fns[-1])
                if has_interactive and self.on_input is not None and self._methods:
                    fns.append(INPUT_FN(self._on_input))
                    lib.call_set_input(h, fns[-1], self._methods)
                with self._lock:
                    self._lib, self._handle, self._fns = lib, h, tuple(fns)
                    if self._cancelled:             # cancel() came between the checks: pass it on
                        lib.call_cancel(h)
        except BaseException:
            self._finish()
            raise
        return True

    def _run(self, engine: int, actor: Actor, name: bytes, args: bytes | None) -> tuple[int, str | None]:
        assert self._lib is not None
        if self._handle is not None:
            return self._lib.op_call(engine, actor, name, args, self._handle)
        return self._lib.op(engine, actor, name, args)

    def _finish(self) -> BaseException | None:
        """Frees the handle (after the op returned) and gives the callback's exception, if any."""
        with self._lock:
            lib, h = self._lib, self._handle
            self._handle = None
        if h is not None and lib is not None:
            lib.call_free(h)
        with self._lock:
            self._fns = ()
            self._running = False
            err, self._error = self._error, None
        return err

    def _fail(self, e: BaseException) -> None:
        """A callback raised: remember the first exception and cancel the call."""
        with self._lock:
            if self._error is None:
                self._error = e
            if self._handle is not None and self._lib is not None:
                self._lib.call_cancel(self._handle)

    # ---- the C callbacks: they never raise into C ----------------------------------------

    def _on_event(self, _ud: Any, text: bytes | None) -> None:
        _tls.call_depth = getattr(_tls, "call_depth", 0) + 1
        try:
            ev = json.loads((text or b"{}").decode("utf-8", "replace"))
            if not isinstance(ev, dict):
                return
            if self.on_event is not None:
                self.on_event(ev)
            kind = ev.get("type")
            if kind == "progress" and self.on_progress is not None:
                self.on_progress(ev)
            elif kind == "log" and self.on_log is not None:
                self.on_log(ev)
        except BaseException as e:  # an exception must never unwind into C
            self._fail(e)
        finally:
            _tls.call_depth -= 1

    def _on_input(self, _ud: Any, text: bytes | None, reply: int | None) -> None:
        _tls.call_depth = getattr(_tls, "call_depth", 0) + 1
        try:
            assert self.on_input is not None and self._lib is not None
            _answer_input(self._lib, self.on_input, text, reply)
        except BaseException as e:  # an exception must never unwind into C
            self._fail(e)
        finally:
            _tls.call_depth -= 1


class _State:
    """What an engine owns, kept apart from the Engine object so that a finalizer can close it."""

    def __init__(self, lib: Library, handle: int, log_fn: Any, workers: int, input_fn: Any = None) -> None:
        self.lib = lib
        self.handle: int | None = handle
        self.log_fn = log_fn            # the C callbacks must outlive the engine
        self.input_fn = input_fn
        self.workers = workers
        self.cv = threading.Condition()
        self.inflight = 0
        self.calls: set[Call] = set()
        self.closing = False
        self.executor: concurrent.futures.ThreadPoolExecutor | None = None

    # A call holds the engine open: close() waits until every call has left the C library, so no
    # call can ever reach an engine that mcpl_close has freed.
    def enter(self, call: Call) -> int:
        with self.cv:
            if self.handle is None or self.closing:
                raise EngineClosed("the engine is closed")
            self.inflight += 1
            self.calls.add(call)
            return self.handle

    def leave(self, call: Call) -> None:
        with self.cv:
            self.inflight -= 1
            self.calls.discard(call)
            if self.inflight == 0:
                self.cv.notify_all()

    def call(self, actor: Actor, name: bytes, payload: bytes | None, call: Call | None = None) -> dict[str, Any]:
        if _in_log_callback():
            raise RuntimeError("an engine call from inside the engine's log callback (a logging "
                               "handler) would deadlock; log handlers must not call the engine")
        if call is None:
            call = Call()
        if not call._start(self.lib):
            raise Timeout("the call was cancelled before it started", reason="cancelled")
        failed: BaseException | None = None
        try:
            handle = self.enter(call)
            try:
                rc, text = call._run(handle, actor, name, payload)
            finally:
                self.leave(call)
        finally:
            failed = call._finish()
        if failed is not None:
            raise failed
        return _result(self.lib, rc, text)

    def pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self.cv:
            if self.handle is None or self.closing:
                raise EngineClosed("the engine is closed")
            if self.executor is None:
                self.executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="mcplink")
            return self.executor

    async def acall(self, actor: Actor, name: bytes, payload: bytes | None, call: Call | None = None) -> dict[str, Any]:
        call = Call() if call is None else call
        cf = self.pool().submit(self.call, actor, name, payload, call)
        try:
            return await asyncio.wrap_future(cf)
        except asyncio.CancelledError:
            call.cancel()
            raise

    def close(self) -> None:
        if _in_log_callback():
            raise RuntimeError("engine.close() from inside the engine's log callback would deadlock")
        if _in_call_callback():
            raise RuntimeError("engine.close() from inside a call's callback would wait for that very call")
        with self.cv:
            if self.closing:
                while self.handle is not None:
                    self.cv.wait()
                return
            if self.handle is None:
                return
            self.closing = True
            calls = list(self.calls)
        for c in calls:
            c._abort()
        with self.cv:
            while self.inflight:
                self.cv.wait()
            handle = self.handle
        assert handle is not None
        self.lib.close(handle)
        with self.cv:
            self.handle = None
            self.closing = False
            executor, self.executor = self.executor, None
            self.cv.notify_all()
        if executor is not None:
            executor.shutdown(wait=False)


_CONTINUE_OPS = {"tool": "tool.continue", "tool.call": "tool.continue", "tool.continue": "tool.continue",
                 "prompt": "prompt.continue", "prompt.get": "prompt.continue", "prompt.continue": "prompt.continue",
                 "resource": "resource.continue", "resource.read": "resource.continue",
                 "resource.continue": "resource.continue"}


def _continue_op(kind: str) -> str:
    try:
        return _CONTINUE_OPS[kind]
    except (KeyError, TypeError):
        raise ValueError(f"kind must be tool, prompt or resource (or the op that answered), not {kind!r}") from None


def _continue_args(pending: Mapping[str, Any] | str, responses: Mapping[str, Mapping[str, Any]],
                   timeout_ms: int | None) -> dict[str, Any]:
    if isinstance(pending, Mapping):
        if pending.get("resultType") != "input_required" or not isinstance(pending.get("continuation"), str):
            raise ValueError("pending must be an input_required result (with its continuation) or a continuation token")
        token = pending["continuation"]
    elif isinstance(pending, str):
        token = pending
    else:
        raise TypeError(f"pending must be an input_required result or a continuation token, not {type(pending).__name__}")
    if not isinstance(responses, Mapping):
        raise TypeError(f"input_responses must be a mapping of request keys to answers, not {type(responses).__name__}")
    args: dict[str, Any] = {"continuation": token, "input_responses": {k: dict(v) for k, v in responses.items()}}
    if timeout_ms is not None:
        args["timeout_ms"] = timeout_ms
    return args


def input_required(result: Mapping[str, Any]) -> bool:
    """True when an op's result asks for the user's answers (``resultType == "input_required"``)."""
    return isinstance(result, Mapping) and result.get("resultType") == "input_required"


class Engine:
    """An mcplink engine over one database: opens on construction, ``close()`` (or ``with``) ends it.

    Every engine option is a keyword argument (see core/mcplink.h); options left at None are not
    set. Unknown option names are refused with :class:`mcplink.InvalidArgument` naming them.

    Args:
        db: path of the SQLite database (created if missing).
        key_file: the key ring that seals stored secrets (API keys, tokens); created with mode
            0600 on first use. Without it, storing or reading a secret fails with KeyUnavailable.
        policies: policy directory ("" or None: the built-in default policy).
        lua_dir: load the engine's Lua from this directory (development).
        ca_file: an extra CA bundle trusted for outbound HTTPS.
        pool_size: Lua states serving concurrent calls (1..256, default 8); also the number of
            worker threads of ``aop``.
        log_level: debug, info, warn or error; by default the level ``logger`` is enabled for.
        log_file: write the engine's log to this file instead of to ``logger``.
        oauth_redirect_uri: the redirect URI the host serves for OAuth callbacks.
        oauth_client_metadata_url: the HTTPS URL where the host serves ``oauth.client_metadata``.
        library: a path to libmcplink.so, or a loaded :class:`mcplink.Library` (default: see
            :func:`mcplink.load_library`).
        logger: where the engine's log lines go (default ``logging.getLogger("mcplink")``).
        on_input: the engine's default input handler (``mcpl_options_set_input``): answers the
            servers' questions for every call whose :class:`Call` has no ``on_input`` of its own
            (and for calls without a Call). Called with an :class:`InputRequest` on the thread
            that makes the call, it returns the answer (``request.accept({...})``,
            ``request.decline()``, ``request.cancel()``, a sampling/roots result) or None for no
            answer. If it raises, the error is logged to ``logger`` and the question gets no
            answer (an elicitation is cancelled, sampling or roots refused); the call goes on.
            Without any handler, an elicitation makes the op answer ``input_required``.
        input_methods: which questions ``on_input`` answers: any of ``"elicitation"``,
            ``"sampling"``, ``"roots"`` (default: elicitation only). Only these are declared to
            servers as capabilities.
        **other_options: options of a newer library, passed on by name.

    Raises:
        mcplink.InvalidArgument: an unknown option name or a bad value (``field`` names it).
        mcplink.Error: the engine could not open (its stable code and message).
        mcplink.LibraryNotFound: libmcplink could not be loaded (the paths tried are listed).
    """

    def __init__(self, *, db: str | os.PathLike[str], key_file: str | os.PathLike[str] | None = None,
                 policies: str | os.PathLike[str] | None = None,
                 lua_dir: str | os.PathLike[str] | None = None,
                 ca_file: str | os.PathLike[str] | None = None, pool_size: int | None = None,
                 log_level: str | None = None, log_file: str | os.PathLike[str] | None = None,
                 oauth_redirect_uri: str | None = None, oauth_client_metadata_url: str | None = None,
                 library: str | os.PathLike[str] | Library | None = None,
                 logger: logging.Logger | None = None, on_input: InputHandler | None = None,
                 input_methods: Iterable[str] = ("elicitation",), **other_options: Any) -> None:
        if on_input is not None and not callable(on_input):
            raise TypeError(f"on_input must be callable, not {type(on_input).__name__}")
        input_bits = _input_bits(input_methods)
        lib = library if isinstance(library, Library) else load_library(library)
        if on_input is not None and not getattr(lib, "has_engine_input", False):
            raise NotImplementedError(f"{lib.path} has no engine-wide input handler (mcpl_options_set_input): "
                                      "on_input needs a newer libmcplink")
        self._logger = logger if logger is not None else logging.getLogger("mcplink")
        options: dict[str, Any] = {
            "db": db, "key_file": key_file, "policies": policies, "lua_dir": lua_dir,
            "ca_file": ca_file, "pool_size": pool_size, "log_level": log_level, "log_file": log_file,
            "oauth_redirect_uri": oauth_redirect_uri,
            "oauth_client_metadata_url": oauth_client_metadata_url, **other_options}
        if log_level is None and log_file is None:
            options["log_level"] = _level_for(self._logger)
        log_fn = input_fn = None
        o = lib.options_new()
        if not o:
            raise MemoryError("mcpl_options_new failed")
        try:
            for name, value in options.items():
                if value is None:
                    continue
                if lib.options_set(o, _text(f"option name {name!r}", name), _text(f"option {name}", value)) != 0:
                    if name not in OPTIONS:
                        raise InvalidArgument(f"unknown engine option {name!r} (known: {', '.join(OPTIONS)})",
                                              field=name)
                    hint = _OPTION_HINTS.get(name, "at most 4096 bytes")
                    raise InvalidArgument(f"bad value for engine option {name}: {value!r} ({hint})", field=name)
            if log_file is None:
                # Without a log file the engine's lines go to Python's logging, never to stderr.
                log_fn = _log_callback(self._logger)
                lib.options_set_log(o, log_fn)
            if on_input is not None and input_bits:
                input_fn = _engine_input_callback(lib, on_input, self._logger)
                lib.options_set_input(o, input_fn, input_bits)
            handle, err = lib.open(o)
        finally:
            lib.options_free(o)
        if not handle:
            try:
                obj = json.loads(err or "{}").get("error")
            except ValueError:
                obj = {"code": "internal", "message": str(err)}
            raise error_from(obj or {"code": "internal", "message": "mcpl_open failed"})
        workers = int(pool_size) if pool_size is not None else _POOL_DEFAULT
        self._state = _State(lib, handle, log_fn, workers, input_fn)
        self._finalizer = weakref.finalize(self, self._state.close)
        self._ops: dict[str, dict[str, Any]] | None = None

    # ---- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        """Closes the engine; idempotent and thread-safe.

        New calls are refused with :class:`mcplink.EngineClosed` from now on; calls in flight are
        cancelled where the library supports per-call cancellation and otherwise run to their own
        end (at most the server's timeout), then the engine is closed.
        """
        self._state.close()
        self._finalizer.detach()

    async def aclose(self) -> None:
        """``close()`` off the event loop (it waits for calls in flight)."""
        await asyncio.to_thread(self.close)

    @property
    def closed(self) -> bool:
        """True once ``close()`` has begun."""
        return self._state.handle is None or self._state.closing

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def library(self) -> Library:
        """The loaded libmcplink (path, version)."""
        return self._state.lib

    def __repr__(self) -> str:
        return f"<mcplink.Engine {'closed' if self.closed else 'open'} ({self._state.lib.path})>"

    # ---- calls ---------------------------------------------------------------

    def op(self, name: str, args: Mapping[str, Any] | None = None, *, tenant: str | None = None,
           user: str | None = None, system: bool = False, call: Call | None = None) -> dict[str, Any]:
        """Runs the op ``name`` with ``args`` as a tenant user or the system actor.

        Args:
            call: a :class:`Call` with progress/log callbacks, an input handler, and ``cancel()``
                for another thread (tool.call, prompt.get, resource.read and their ``*.continue``).

        Returns:
            The op's result (a JSON object as a dict). A call that waits for its user's answers
            (an elicitation without ``on_input``) returns ``{"resultType": "input_required",
            "input_requests", "continuation", "expires_at"}``: see :meth:`resume`.

        Raises:
            mcplink.Error: the op failed; the subclass is named after the stable code (a cancelled
                call: :class:`mcplink.Timeout` with ``reason == "cancelled"``).
            ValueError, TypeError: no actor, or arguments that are not a JSON object.
            mcplink.EngineClosed: the engine was closed.
            Exception: whatever a callback of ``call`` raised (the call was cancelled).
        """
        return self._state.call(_actor(tenant, user, system), _text("op name", name), _payload(name, args), call)

    async def aop(self, name: str, args: Mapping[str, Any] | None = None, *, tenant: str | None = None,
                  user: str | None = None, system: bool = False, call: Call | None = None) -> dict[str, Any]:
        """``op`` for asyncio: the call runs on the engine's worker threads, off the event loop.

        Cancelling the awaiting task cancels the call in the engine (and ``call``, if given) and
        stops the wait at once. The callbacks of ``call`` run on the worker thread (use
        ``loop.call_soon_threadsafe`` to reach the event loop from them).
        """
        return await self._state.acall(_actor(tenant, user, system), _text("op name", name),
                                       _payload(name, args), call)

    def resume(self, pending: Mapping[str, Any] | str, input_responses: Mapping[str, Mapping[str, Any]], *,
               kind: str = "tool", tenant: str | None = None, user: str | None = None,
               call: Call | None = None, timeout_ms: int | None = None) -> dict[str, Any]:
        """Carries on a call that answered ``input_required``, with the user's answers.

        Runs ``tool.continue`` (``kind="prompt"``: ``prompt.continue``, ``kind="resource"``:
        ``resource.continue``) as the user who made the call. The result may be
        ``input_required`` again (the next round, with a new continuation).

        Args:
            pending: the ``input_required`` result, or its ``continuation`` token.
            input_responses: an answer for every request, by its key:
                ``{"profile": {"action": "accept", "content": {...}}, "connect": {"action": "decline"}}``.
            kind: ``"tool"``, ``"prompt"`` or ``"resource"`` (or the op that answered:
                ``"tool.call"``, ``"prompt.get"``, ``"resource.read"``, ``"tool.continue"``, ...).
            call: a :class:`Call` for this round (events, an input handler, cancel).
            timeout_ms: the server's timeout for this round.
        """
        return self.op(_continue_op(kind), _continue_args(pending, input_responses, timeout_ms),
                       tenant=tenant, user=user, call=call)

    async def aresume(self, pending: Mapping[str, Any] | str, input_responses: Mapping[str, Mapping[str, Any]], *,
                      kind: str = "tool", tenant: str | None = None, user: str | None = None,
                      call: Call | None = None, timeout_ms: int | None = None) -> dict[str, Any]:
        """:meth:`resume` for asyncio."""
        return await self.aop(_continue_op(kind), _continue_args(pending, input_responses, timeout_ms),
                              tenant=tenant, user=user, call=call)

    def as_user(self, tenant: str, user: str) -> Client:
        """A client that calls as ``user`` of ``tenant``: ``engine.as_user("acme", "alice")``."""
        _actor(tenant, user, False)
        return Client(self, {"tenant": tenant, "user": user})

    def as_system(self) -> Client:
        """A client that calls as the system actor (the platform's system administrator)."""
        return Client(self, {"system": True})

    def _registry(self) -> dict[str, dict[str, Any]]:
        """The op registry (``op.list``), read once per engine."""
        if self._ops is None:
            self._ops = {o["name"]: o for o in self.op("op.list", system=True)["ops"]}
        return self._ops


class _OpAttribute:
    """``client.op``: a method (``client.op("server.list")``) that is also the ``op`` family
    (``client.op.list()``), so the registry's ``op.*`` ops are reached like any other."""

    def __get__(self, client: Client | None, owner: type) -> Any:
        if client is None:
            return self
        return _BoundOp(client, "op")


class _Family:
    """The ops of one family for a client: ``alice.server`` (``alice.server.create(...)``)."""

    __slots__ = ("_client", "_family")

    def __init__(self, client: Client, family: str) -> None:
        self._client = client
        self._family = family

    def _actions(self) -> dict[str, dict[str, Any]]:
        prefix = self._family + "."
        return {n[len(prefix):]: o for n, o in self._client._engine._registry().items() if n.startswith(prefix)}

    def __getattr__(self, action: str) -> _OpFunction:
        if action.startswith("_"):
            raise AttributeError(action)
        actions = self._actions()
        if action not in actions:
            raise AttributeError(f"no op '{self._family}.{action}' (the {self._family} ops: "
                                 f"{', '.join(sorted(actions))})")
        return _OpFunction(self._client, f"{self._family}.{action}", actions[action])

    def __dir__(self) -> list[str]:
        return sorted(self._actions())

    def __repr__(self) -> str:
        return f"<mcplink ops {self._family}.{{{','.join(sorted(self._actions()))}}}>"


class _BoundOp(_Family):
    __slots__ = ()

    def __call__(self, name: str, args: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Any:
        """Runs the op ``name`` as this client's actor; ``kwargs`` are more arguments."""
        return self._client._invoke(name, args, kwargs)


def _describe(name: str, spec: dict[str, Any]) -> str:
    lines = [f"{name}: {spec.get('summary', '')} (role {spec.get('role')})"]
    for arg, s in sorted((spec.get("args") or {}).items()):
        lines.append(f"  {arg}: {s.get('type', 'any')}{' (required)' if s.get('required') else ''}")
    return "\n".join(lines)


class _OpFunction:
    """One op as a function of a client: ``alice.server.create(name="CRM")``."""

    def __init__(self, client: Client, name: str, spec: dict[str, Any]) -> None:
        self._client = client
        self._name = name
        self.__doc__ = _describe(name, spec)

    def __call__(self, args: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Any:
        return self._client._invoke(self._name, args, kwargs)

    def __repr__(self) -> str:
        return f"<mcplink op {self._name}>"


class Client:
    """Calls an engine as one actor; every op family of the registry is an attribute.

    ``alice = engine.as_user("acme", "alice")``, then ``alice.op("server.list")`` or
    ``alice.server.list()``; ``alice.server.create(name="CRM")`` passes keyword arguments as the
    op's arguments. ``alice.aio`` is the same client for asyncio (every call returns an awaitable),
    e.g. ``await alice.aio.server.list()``. ``alice.with_call(c)`` is the same client whose calls
    run with the :class:`Call` ``c`` (its callbacks, its cancellation).
    """

    __slots__ = ("_engine", "_actor", "_async", "_call")
    op = _OpAttribute()

    def __init__(self, engine: Engine, actor: dict[str, Any], is_async: bool = False,
                 call: Call | None = None) -> None:
        self._engine = engine
        self._actor = dict(actor)
        self._async = is_async
        self._call = call

    @property
    def actor(self) -> dict[str, Any]:
        """``{"tenant", "user"}`` or ``{"system": True}``."""
        return dict(self._actor)

    @property
    def aio(self) -> Client:
        """This client for asyncio: its calls return awaitables."""
        return Client(self._engine, self._actor, True, self._call)

    def with_call(self, call: Call | None) -> Client:
        """This client with its calls run through ``call`` (a :class:`Call`; None: without).

        ``alice.with_call(c).tool.call(assistant=..., tool=..., arguments=...)``: progress and log
        events go to ``c``'s callbacks, questions to its ``on_input``, and ``c.cancel()`` from
        another thread cancels the call. One Call serves one call at a time.
        """
        if call is not None and not isinstance(call, Call):
            raise TypeError(f"call must be an mcplink.Call, not {type(call).__name__}")
        return Client(self._engine, self._actor, self._async, call)

    async def aop(self, name: str, args: Mapping[str, Any] | None = None, /, **kwargs: Any) -> dict[str, Any]:
        """``await client.aop("server.list")``: the op off the event loop."""
        return await self._engine.aop(name, _merge(args, kwargs), call=self._call, **self._actor)

    def resume(self, pending: Mapping[str, Any] | str, input_responses: Mapping[str, Mapping[str, Any]], *,
               kind: str = "tool", timeout_ms: int | None = None) -> Any:
        """Carries on a call that answered ``input_required`` (:meth:`Engine.resume`), as this
        client's user and with its Call; an awaitable for an asyncio client."""
        if self._actor.get("system"):
            raise ValueError("only a tenant user can carry on a call (its continuation is the user's)")
        if self._async:
            return self._engine.aresume(pending, input_responses, kind=kind, timeout_ms=timeout_ms,
                                        call=self._call, **self._actor)
        return self._engine.resume(pending, input_responses, kind=kind, timeout_ms=timeout_ms,
                                   call=self._call, **self._actor)

    def _invoke(self, name: str, args: Mapping[str, Any] | None, kwargs: dict[str, Any]) -> Any:
        merged = _merge(args, kwargs)
        if self._async:
            return self._engine.aop(name, merged, call=self._call, **self._actor)
        return self._engine.op(name, merged, call=self._call, **self._actor)

    def __getattr__(self, family: str) -> _Family:
        if family.startswith("_"):
            raise AttributeError(family)
        families = {n.split(".", 1)[0] for n in self._engine._registry()}
        if family not in families:
            raise AttributeError(f"no op family '{family}' (families: {', '.join(sorted(families))})")
        return _Family(self, family)

    def __dir__(self) -> list[str]:
        return sorted({"op", "aop", "aio", "actor", "with_call", "resume"}
                      | {n.split(".", 1)[0] for n in self._engine._registry()})

    def __repr__(self) -> str:
        who = "system" if self._actor.get("system") else f"{self._actor['tenant']}/{self._actor['user']}"
        return (f"<mcplink.Client {who}{' (asyncio)' if self._async else ''}"
                f"{' (with a Call)' if self._call is not None else ''}>")


def _merge(args: Mapping[str, Any] | None, kwargs: dict[str, Any]) -> Mapping[str, Any] | None:
    if not kwargs:
        return args
    if args is None:
        return kwargs
    if not isinstance(args, Mapping):
        raise TypeError(f"arguments must be a mapping (a JSON object), not {type(args).__name__}")
    return {**args, **kwargs}

