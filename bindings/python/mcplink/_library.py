"""mcplink._library: finds and loads libmcplink.so and declares its C API for ctypes.

Search order: an explicit path, the MCPLINK_LIBRARY environment variable, the build tree this
package sits in (``<checkout>/build/libmcplink.so``), then the installed system library. An
explicit path or MCPLINK_LIBRARY that does not load is an error (no silent fallback).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import POINTER, Structure, c_char_p, c_int, c_void_p
from pathlib import Path

from .errors import LibraryNotFound

__all__ = ["Library", "load_library", "ENV_VAR"]

ENV_VAR = "MCPLINK_LIBRARY"

# mcpl_log_fn: void (*)(void *ud, const char *level, const char *msg)
LOG_FN = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_char_p)
# mcpl_event_fn: void (*)(void *ud, const char *event_json)
EVENT_FN = ctypes.CFUNCTYPE(None, c_void_p, c_char_p)
# mcpl_input_fn: void (*)(void *ud, const char *request_json, mcpl_reply *reply)
INPUT_FN = ctypes.CFUNCTYPE(None, c_void_p, c_char_p, c_void_p)
# the method bits of mcpl_call_set_input
INPUT_ELICITATION, INPUT_SAMPLING, INPUT_ROOTS = 1, 2, 4


class Actor(Structure):
    """mcpl_actor: who is calling (a tenant user, or the system actor)."""
    _fields_ = [("tenant", c_char_p), ("user", c_char_p), ("system", c_int)]


_REQUIRED = ("mcpl_options_new", "mcpl_options_set", "mcpl_options_set_log", "mcpl_options_free",
             "mcpl_open", "mcpl_op", "mcpl_code_name", "mcpl_free", "mcpl_close", "mcpl_version")
# The per-call API of interactive calls (cancellation, progress, input requests); used when the
# library has it (see engine._Call).
_PER_CALL = ("mcpl_call_new", "mcpl_call_free", "mcpl_call_cancel", "mcpl_op_call")
# Events and input handlers of a call handle (interactive calls).
_INTERACTIVE = ("mcpl_call_set_events", "mcpl_call_set_input", "mcpl_reply_set")


class Library:
    """A loaded libmcplink with its functions declared.

    Attributes:
        path: where it was loaded from.
        version: what ``mcpl_version()`` says.
        has_calls: whether it has the per-call API (``mcpl_call_*``, ``mcpl_op_call``).
        has_interactive: whether call handles take event and input callbacks
            (``mcpl_call_set_events``, ``mcpl_call_set_input``, ``mcpl_reply_set``).
        has_engine_input: whether an engine takes a default input handler
            (``mcpl_options_set_input``).
    """

    def __init__(self, cdll: ctypes.CDLL, path: str) -> None:
        missing = [n for n in _REQUIRED if not hasattr(cdll, n)]
        if missing:
            raise LibraryNotFound(f"{path} is not an mcplink library (missing {', '.join(missing)})")
        self.path = path
        self._c = c = cdll
        c.mcpl_options_new.restype = c_void_p
        c.mcpl_options_new.argtypes = []
        c.mcpl_options_set.restype = c_int
        c.mcpl_options_set.argtypes = [c_void_p, c_char_p, c_char_p]
        c.mcpl_options_set_log.restype = None
        c.mcpl_options_set_log.argtypes = [c_void_p, LOG_FN, c_void_p]
        c.mcpl_options_free.restype = None
        c.mcpl_options_free.argtypes = [c_void_p]
        c.mcpl_open.restype = c_void_p
        c.mcpl_open.argtypes = [c_void_p, POINTER(c_void_p)]
        c.mcpl_op.restype = c_int
        c.mcpl_op.argtypes = [c_void_p, POINTER(Actor), c_char_p, c_char_p, POINTER(c_void_p)]
        c.mcpl_code_name.restype = c_char_p
        c.mcpl_code_name.argtypes = [c_int]
        # Results are read as void* so that this binding can hand them back to mcpl_free.
        c.mcpl_free.restype = None
        c.mcpl_free.argtypes = [c_void_p]
        c.mcpl_close.restype = None
        c.mcpl_close.argtypes = [c_void_p]
        c.mcpl_version.restype = c_char_p
        c.mcpl_version.argtypes = []
        self.version: str = c.mcpl_version().decode()
        self.has_calls = all(hasattr(c, n) for n in _PER_CALL)
        if self.has_calls:
            c.mcpl_call_new.restype = c_void_p
            c.mcpl_call_new.argtypes = []
            c.mcpl_call_free.restype = None
            c.mcpl_call_free.argtypes = [c_void_p]
            c.mcpl_call_cancel.restype = c_int
            c.mcpl_call_cancel.argtypes = [c_void_p]
            c.mcpl_op_call.restype = c_int
            c.mcpl_op_call.argtypes = [c_void_p, POINTER(Actor), c_char_p, c_char_p, c_void_p,
                                       POINTER(c_void_p)]
        self.has_interactive = self.has_calls and all(hasattr(c, n) for n in _INTERACTIVE)
        if self.has_interactive:
            c.mcpl_call_set_events.restype = None
            c.mcpl_call_set_events.argtypes = [c_void_p, EVENT_FN, c_void_p]
            c.mcpl_call_set_input.restype = None
            c.mcpl_call_set_input.argtypes = [c_void_p, INPUT_FN, c_void_p, ctypes.c_uint]
            c.mcpl_reply_set.restype = c_int
            c.mcpl_reply_set.argtypes = [c_void_p, c_char_p]
        self.has_engine_input = self.has_interactive and hasattr(c, "mcpl_options_set_input")
        if self.has_engine_input:
            c.mcpl_options_set_input.restype = None
            c.mcpl_options_set_input.argtypes = [c_void_p, INPUT_FN, c_void_p, ctypes.c_uint]

    def __repr__(self) -> str:
        return f"<mcplink.Library {self.path} version {self.version}>"

    # ---- thin wrappers: ctypes releases the GIL for the duration of each C call ----

    def options_new(self) -> int | None:
        return self._c.mcpl_options_new()

    def options_set(self, o: int, name: bytes, value: bytes | None) -> int:
        return self._c.mcpl_options_set(o, name, value)

    def options_set_log(self, o: int, fn: object) -> None:
        self._c.mcpl_options_set_log(o, fn, None)

    def options_set_input(self, o: int, fn: object, methods: int) -> None:
        """mcpl_options_set_input; ``fn`` is an INPUT_FN the caller keeps alive for the engine's life."""
        self._c.mcpl_options_set_input(o, fn, None, methods)

    def options_free(self, o: int) -> None:
        self._c.mcpl_options_free(o)

    def open(self, o: int) -> tuple[int | None, str | None]:
        """mcpl_open: (engine handle, None) or (None, error JSON)."""
        err = c_void_p()
        h = self._c.mcpl_open(o, ctypes.byref(err))
        return h, self.take(err)

    def op(self, e: int, actor: Actor, name: bytes, args: bytes | None) -> tuple[int, str | None]:
        """mcpl_op: (code, result or error JSON); the result string is always freed."""
        res = c_void_p()
        rc = self._c.mcpl_op(e, ctypes.byref(actor), name, args, ctypes.byref(res))
        return rc, self.take(res)

    def op_call(self, e: int, actor: Actor, name: bytes, args: bytes | None, call: int) -> tuple[int, str | None]:
        """mcpl_op_call (per-call API): like op, with a call handle that can be cancelled."""
        res = c_void_p()
        rc = self._c.mcpl_op_call(e, ctypes.byref(actor), name, args, call, ctypes.byref(res))
        return rc, self.take(res)

    def call_new(self) -> int | None:
        return self._c.mcpl_call_new()

    def call_cancel(self, call: int) -> int:
        return self._c.mcpl_call_cancel(call)

    def call_free(self, call: int) -> None:
        self._c.mcpl_call_free(call)

    def call_set_events(self, call: int, fn: object) -> None:
        """mcpl_call_set_events; ``fn`` is an EVENT_FN the caller keeps alive while the call runs."""
        self._c.mcpl_call_set_events(call, fn, None)

    def call_set_input(self, call: int, fn: object, methods: int) -> None:
        """mcpl_call_set_input; ``fn`` is an INPUT_FN the caller keeps alive while the call runs."""
        self._c.mcpl_call_set_input(call, fn, None, methods)

    def reply_set(self, reply: int, result_json: bytes) -> int:
        return self._c.mcpl_reply_set(reply, result_json)

    def take(self, p: c_void_p) -> str | None:
        """The text of a string the library allocated, which is then freed with mcpl_free."""
        if not p.value:
            return None
        try:
            return ctypes.string_at(p.value).decode("utf-8", "replace")
        finally:
            self._c.mcpl_free(p.value)

    def close(self, e: int) -> None:
        self._c.mcpl_close(e)

    def code_name(self, code: int) -> str:
        return self._c.mcpl_code_name(code).decode()


def _package_checkout() -> Path | None:
    """The source checkout this package sits in (bindings/python/mcplink), if it is one."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "core" / "mcplink.h").is_file() else None


def candidates(path: str | os.PathLike[str] | None = None) -> list[tuple[str, str]]:
    """The places load_library would try, in order, as (description, path or name)."""
    if path is not None:
        return [("explicit path", os.fspath(path))]
    env = os.environ.get(ENV_VAR)
    if env:
        return [(f"${ENV_VAR}", env)]
    out = []
    root = _package_checkout()
    if root is not None:
        out.append(("build tree", str(root / "build" / "libmcplink.so")))
    found = ctypes.util.find_library("mcplink")
    if found:
        out.append(("system (ldconfig)", found))
    out.append(("system", "libmcplink.so.0"))
    for d in ("/usr/local/lib", "/usr/lib"):
        out.append(("system", f"{d}/libmcplink.so.0"))
    return out


_cache: dict[str, Library] = {}
_cache_lock = threading.Lock()


def load_library(path: str | os.PathLike[str] | None = None) -> Library:
    """Loads libmcplink (once per path) and returns it.

    Args:
        path: an explicit path to libmcplink.so; when None, $MCPLINK_LIBRARY, then the build
            tree of this checkout, then the installed system library.

    Raises:
        LibraryNotFound: nothing loaded; the message names every place tried and why it failed.
    """
    tried = []
    for what, p in candidates(path):
        with _cache_lock:
            if p in _cache:
                return _cache[p]
        if "/" in p and not os.path.exists(p):
            tried.append(f"{p} ({what}): no such file")
            continue
        try:
            cdll = ctypes.CDLL(p)
        except OSError as e:
            tried.append(f"{p} ({what}): {e}")
            continue
        try:
            lib = Library(cdll, p)
        except LibraryNotFound as e:
            tried.append(f"{p} ({what}): {e}")
            continue
        with _cache_lock:
            return _cache.setdefault(p, lib)
    hint = f"build it with `make`, install it with `make install`, or set ${ENV_VAR}"
    raise LibraryNotFound("libmcplink could not be loaded; tried:\n  " + "\n  ".join(tried) + f"\n{hint}")
