"""mcplink: the Python binding of the mcplink engine (pure Python over libmcplink.so with ctypes).

    import mcplink
    with mcplink.Engine(db="/var/lib/mcplink/mcplink.db") as engine:
        alice = engine.as_user("acme", "alice")
        crm = alice.server.create(name="CRM")
        alice.server.update(id=crm["id"], url="https://mcp.example.com/mcp")

Every op of the engine's registry is reachable by name (``engine.op("server.list", tenant=...,
user=...)``) or as an attribute of a client. Failures raise :class:`Error` subclasses named after
the stable codes. The engine's log goes to the ``mcplink`` logger.
"""
from ._library import ENV_VAR, Library, load_library
from .engine import OPTIONS, Call, Client, Engine, InputRequest, input_required
from .errors import (Conflict, EngineClosed, Error, Forbidden, Internal, InvalidArgument, KeyUnavailable,
                     LibraryNotFound, NotFound, Timeout, TooLarge, Unauthorized, Unavailable, UpstreamError,
                     UrlBlocked, UserNotAuthenticated, error_class)

__version__ = "0.1.0"

__all__ = [
    "Engine", "Client", "Call", "InputRequest", "input_required", "Library", "load_library", "OPTIONS", "ENV_VAR",
    "Error", "InvalidArgument", "NotFound", "Forbidden", "Conflict", "UrlBlocked", "Unauthorized",
    "UserNotAuthenticated", "UpstreamError", "Timeout", "TooLarge", "KeyUnavailable", "Internal",
    "Unavailable", "LibraryNotFound", "EngineClosed", "error_class",
]
