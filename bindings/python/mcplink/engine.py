"""mcplink.engine: the engine, its calls (sync and asyncio), and clients bound to an actor.

The C library does the work; each call releases the GIL (ctypes does) so threads run calls in
parallel, and ``aop`` runs the call on the engine's own worker threads, off the event loop.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from ._library import LOG_FN, Actor, Library, load_library
from .errors import EngineClosed, Internal, InvalidArgument, Timeout, error_class, error_from

__all__ = ["Engine", "Client", "OPTIONS"]

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


class _Call:
    """One engine call in flight: the one place where the per-call C API attaches.

    With ``mcpl_call_*`` in the library, each call gets a handle: ``cancel()`` cancels it in the
    engine (thread-safe, any time), and engine.close() cancels every call in flight. Progress and
    input-request callbacks of interactive calls will be set on this handle too. Without that API,
    ``cancel()`` only marks the call: one not yet started is skipped, one running in the engine
    runs to its own end (the server's timeout).
    """

    __slots__ = ("_lib", "_lock", "_handle", "cancelled")

    def __init__(self, lib: Library) -> None:
        self._lib = lib
        self._lock = threading.Lock()
        self._handle: int | None = None
        self.cancelled = False
        if lib.has_calls:
            h = lib.call_new()
            if not h:
                raise MemoryError("mcpl_call_new failed")
            self._handle = h

    def run(self, engine: int, actor: Actor, name: bytes, args: bytes | None) -> tuple[int, str | None]:
        if self.cancelled:
            return 0, None
        if self._handle is not None:
            return self._lib.op_call(engine, actor, name, args, self._handle)
        return self._lib.op(engine, actor, name, args)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._handle is not None:
                self._lib.call_cancel(self._handle)

    def free(self) -> None:
        with self._lock:
            h, self._handle = self._handle, None
        if h is not None:
            self._lib.call_free(h)


class _State:
    """What an engine owns, kept apart from the Engine object so that a finalizer can close it."""

    def __init__(self, lib: Library, handle: int, log_fn: Any, workers: int) -> None:
        self.lib = lib
        self.handle: int | None = handle
        self.log_fn = log_fn            # the C callback must outlive the engine
        self.workers = workers
        self.cv = threading.Condition()
        self.inflight = 0
        self.calls: set[_Call] = set()
        self.closing = False
        self.executor: concurrent.futures.ThreadPoolExecutor | None = None

    # A call holds the engine open: close() waits until every call has left the C library, so no
    # call can ever reach an engine that mcpl_close has freed.
    def enter(self, call: _Call) -> int:
        with self.cv:
            if self.handle is None or self.closing:
                raise EngineClosed("the engine is closed")
            self.inflight += 1
            self.calls.add(call)
            return self.handle

    def leave(self, call: _Call) -> None:
        with self.cv:
            self.inflight -= 1
            self.calls.discard(call)
            if self.inflight == 0:
                self.cv.notify_all()

    def call(self, actor: Actor, name: bytes, payload: bytes | None, call: _Call | None = None) -> dict[str, Any]:
        if _in_log_callback():
            raise RuntimeError("an engine call from inside the engine's log callback (a logging "
                               "handler) would deadlock; log handlers must not call the engine")
        if call is None:
            call = _Call(self.lib)
        try:
            handle = self.enter(call)
            try:
                rc, text = call.run(handle, actor, name, payload)
            finally:
                self.leave(call)
        finally:
            call.free()
        if call.cancelled and text is None:
            raise Timeout("the call was cancelled before it started", reason="cancelled")
        return _result(self.lib, rc, text)

    def pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self.cv:
            if self.handle is None or self.closing:
                raise EngineClosed("the engine is closed")
            if self.executor is None:
                self.executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.workers, thread_name_prefix="mcplink")
            return self.executor

    async def acall(self, actor: Actor, name: bytes, payload: bytes | None) -> dict[str, Any]:
        call = _Call(self.lib)
        try:
            cf = self.pool().submit(self.call, actor, name, payload, call)
        except BaseException:
            call.free()
            raise
        cf.add_done_callback(lambda _f: call.free())  # also when it never started
        try:
            return await asyncio.wrap_future(cf)
        except asyncio.CancelledError:
            call.cancel()
            raise

    def close(self) -> None:
        if _in_log_callback():
            raise RuntimeError("engine.close() from inside the engine's log callback would deadlock")
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
            c.cancel()
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
                 logger: logging.Logger | None = None, **other_options: Any) -> None:
        lib = library if isinstance(library, Library) else load_library(library)
        self._logger = logger if logger is not None else logging.getLogger("mcplink")
        options: dict[str, Any] = {
            "db": db, "key_file": key_file, "policies": policies, "lua_dir": lua_dir,
            "ca_file": ca_file, "pool_size": pool_size, "log_level": log_level, "log_file": log_file,
            "oauth_redirect_uri": oauth_redirect_uri,
            "oauth_client_metadata_url": oauth_client_metadata_url, **other_options}
        if log_level is None and log_file is None:
            options["log_level"] = _level_for(self._logger)
        log_fn = None
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
        self._state = _State(lib, handle, log_fn, workers)
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
           user: str | None = None, system: bool = False) -> dict[str, Any]:
        """Runs the op ``name`` with ``args`` as a tenant user or the system actor.

        Returns:
            The op's result (a JSON object as a dict).

        Raises:
            mcplink.Error: the op failed; the subclass is named after the stable code.
            ValueError, TypeError: no actor, or arguments that are not a JSON object.
            mcplink.EngineClosed: the engine was closed.
        """
        return self._state.call(_actor(tenant, user, system), _text("op name", name), _payload(name, args))

    async def aop(self, name: str, args: Mapping[str, Any] | None = None, *, tenant: str | None = None,
                  user: str | None = None, system: bool = False) -> dict[str, Any]:
        """``op`` for asyncio: the call runs on the engine's worker threads, off the event loop.

        Cancelling the awaiting task stops the wait at once. The call is cancelled in the engine
        when the library has per-call cancellation; otherwise it runs to its own end (at most the
        server's timeout) in the background, and its result is dropped.
        """
        return await self._state.acall(_actor(tenant, user, system), _text("op name", name),
                                       _payload(name, args))

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
    e.g. ``await alice.aio.server.list()``.
    """

    __slots__ = ("_engine", "_actor", "_async")
    op = _OpAttribute()

    def __init__(self, engine: Engine, actor: dict[str, Any], is_async: bool = False) -> None:
        self._engine = engine
        self._actor = dict(actor)
        self._async = is_async

    @property
    def actor(self) -> dict[str, Any]:
        """``{"tenant", "user"}`` or ``{"system": True}``."""
        return dict(self._actor)

    @property
    def aio(self) -> Client:
        """This client for asyncio: its calls return awaitables."""
        return Client(self._engine, self._actor, True)

    async def aop(self, name: str, args: Mapping[str, Any] | None = None, /, **kwargs: Any) -> dict[str, Any]:
        """``await client.aop("server.list")``: the op off the event loop."""
        return await self._engine.aop(name, _merge(args, kwargs), **self._actor)

    def _invoke(self, name: str, args: Mapping[str, Any] | None, kwargs: dict[str, Any]) -> Any:
        merged = _merge(args, kwargs)
        if self._async:
            return self._engine.aop(name, merged, **self._actor)
        return self._engine.op(name, merged, **self._actor)

    def __getattr__(self, family: str) -> _Family:
        if family.startswith("_"):
            raise AttributeError(family)
        families = {n.split(".", 1)[0] for n in self._engine._registry()}
        if family not in families:
            raise AttributeError(f"no op family '{family}' (families: {', '.join(sorted(families))})")
        return _Family(self, family)

    def __dir__(self) -> list[str]:
        return sorted({"op", "aop", "aio", "actor"} | {n.split(".", 1)[0] for n in self._engine._registry()})

    def __repr__(self) -> str:
        who = "system" if self._actor.get("system") else f"{self._actor['tenant']}/{self._actor['user']}"
        return f"<mcplink.Client {who}{' (asyncio)' if self._async else ''}>"


def _merge(args: Mapping[str, Any] | None, kwargs: dict[str, Any]) -> Mapping[str, Any] | None:
    if not kwargs:
        return args
    if args is None:
        return kwargs
    if not isinstance(args, Mapping):
        raise TypeError(f"arguments must be a mapping (a JSON object), not {type(args).__name__}")
    return {**args, **kwargs}

