"""engine.op, clients bound to an actor (attribute access from the registry), errors by code."""
import asyncio
import inspect
import re

import pytest

import mcplink
from mcplink import errors as merrors
from mcplink._library import load_library
from conftest import API_KEY, LIBRARY, TOP


def test_op_returns_the_result_as_a_dict(engine):
    r = engine.op("server.create", {"name": "CRM", "description": "d"}, tenant="acme", user="ann")
    assert isinstance(r, dict) and r["name"] == "CRM" and r["id"].startswith("srv_")
    got = engine.op("server.get", {"id": r["id"]}, tenant="acme", user="alice")
    assert got["description"] == "d"
    assert engine.op("engine.info", system=True)["version"] == engine.library.version
    assert engine.op("server.list", None, tenant="acme", user="ann")["items"][0]["id"] == r["id"]


def test_op_needs_an_actor_and_object_arguments(engine):
    with pytest.raises(ValueError, match="needs an actor"):
        engine.op("engine.info")
    with pytest.raises(ValueError, match="needs an actor"):
        engine.op("engine.info", tenant="acme")
    with pytest.raises(ValueError, match="system actor: give no tenant or user"):
        engine.op("engine.info", tenant="acme", user="ann", system=True)
    with pytest.raises(TypeError, match="must be a mapping"):
        engine.op("server.create", ["CRM"], tenant="acme", user="ann")
    with pytest.raises(TypeError, match="not JSON"):
        engine.op("server.create", {"name": object()}, tenant="acme", user="ann")
    with pytest.raises(ValueError, match="NUL"):
        engine.op("engine.info\0x", system=True)
    with pytest.raises(ValueError, match="NUL"):
        engine.op("engine.info", tenant="acme\0", user="ann")


def test_clients_and_attribute_access(engine):
    ann = engine.as_user("acme", "ann")
    assert ann.actor == {"tenant": "acme", "user": "ann"}
    assert engine.as_system().actor == {"system": True}
    assert "acme/ann" in repr(ann)
    crm = ann.server.create(name="CRM")               # a keyword named like op's own parameter
    assert ann.op("server.get", {"id": crm["id"]})["name"] == "CRM"
    assert ann.op("server.get", id="CRM")["id"] == crm["id"]
    assert ann.server.get({"id": "CRM"})["id"] == crm["id"]
    assert ann.server.update({"id": "CRM"}, description="merged")["description"] == "merged"
    assert {o["name"] for o in ann.op.list()["ops"]} >= {"server.create", "tool.call", "op.list"}
    assert engine.as_system().tenant.get(id="acme")["name"] == "acme"   # family named like an attribute
    assert engine.as_system().engine.info()["pool_size"] == 8
    # everything comes from the registry: every family and op is reachable, nothing more
    names = {o["name"] for o in engine.op("op.list", system=True)["ops"]}
    for n in names:
        fam, act = n.split(".")
        assert callable(getattr(getattr(ann, fam), act))
    assert set(dir(ann)) >= {n.split(".")[0] for n in names}
    assert "create" in dir(ann.server) and "list" in dir(ann.op)
    assert "server.create" in ann.server.create.__doc__ and "name: string (required)" in ann.server.create.__doc__
    with pytest.raises(AttributeError, match=r"no op 'server.craete' \(the server ops: capabilities, create"):
        ann.server.craete
    with pytest.raises(AttributeError, match="no op family 'servers'"):
        ann.servers
    with pytest.raises(AttributeError):
        ann._private


def test_async_client_view(engine):
    ann = engine.as_user("acme", "ann")

    async def main():
        crm = await ann.aio.server.create(name="CRM")
        got = await ann.aop("server.get", id=crm["id"])
        lst = await ann.aio.op("server.list")
        ops = await ann.aio.op.list()
        return crm, got, lst, ops
    crm, got, lst, ops = asyncio.run(main())
    assert got["id"] == crm["id"] and lst["items"][0]["id"] == crm["id"] and ops["ops"]
    assert inspect.iscoroutinefunction(engine.aop) and "asyncio" in repr(ann.aio)


def library_codes():
    """The stable codes as the library names them (mcpl_code_name), one for each mcpl_code value
    core/mcplink.h declares."""
    header = (TOP / "core" / "mcplink.h").read_text()
    enum = header[header.index("typedef enum {"):header.index("} mcpl_code;")]
    names = re.findall(r"^\s*MCPL_E_([A-Z_]+)", enum, re.M)
    lib = load_library(LIBRARY)
    codes = [lib.code_name(value) for value in range(1, len(names) + 1)]
    assert codes == [n.lower() for n in names], "mcpl_code_name follows the enum"
    return codes


def test_every_code_has_its_class():
    codes = library_codes()
    assert "unavailable" in codes and len(codes) >= 13
    for code in codes:
        cls = mcplink.error_class(code)
        assert cls is not mcplink.Error and cls.code == code and issubclass(cls, mcplink.Error)
        e = merrors.error_from({"code": code, "message": "m", "field": "f"})
        assert type(e) is cls and e.code == code and e.message == "m" and e.field == "f"
        assert str(e) == f"{code}: m (f)"
    assert mcplink.NotFound.code == "not_found" and mcplink.Unavailable.code == "unavailable"
    assert mcplink.UserNotAuthenticated.code == "user_not_authenticated"
    e = merrors.error_from({"code": "brand_new_code", "message": "from a newer engine"})
    assert type(e) is mcplink.Error and e.code == "brand_new_code" and e.field is None
    assert type(merrors.error_from("nonsense")) is mcplink.Internal


def test_errors_by_code_from_the_engine(engine, crm, tmp_path):
    ann, alice = engine.as_user("acme", "ann"), engine.as_user("acme", "alice")
    cases = [
        (mcplink.InvalidArgument, lambda: ann.server.create(), "name"),
        (mcplink.NotFound, lambda: ann.server.get(id="nope"), "id"),
        (mcplink.NotFound, lambda: ann.op("no.such"), "op"),
        (mcplink.Forbidden, lambda: alice.server.create(name="x"), None),
        (mcplink.Conflict, lambda: ann.server.create(name="CRM"), "name"),
        (mcplink.Unauthorized, lambda: engine.op("server.list", tenant="acme", user="mallory"), None),
    ]
    for cls, fn, field in cases:
        with pytest.raises(cls) as ei:
            fn()
        assert ei.value.code == cls.code and ei.value.message and ei.value.field == field
        assert ei.value.data["code"] == cls.code
    ann.server.create(name="plain")
    with pytest.raises(mcplink.UrlBlocked) as ei:
        ann.server.update(id="plain", url="http://127.0.0.1:9/mcp")
    assert ei.value.reason == "scheme" and ei.value.field == "url"
    ann.server.create(name="o")
    ann.server.update(id="o", url="https://127.0.0.1:9/mcp", auth_type="oauth")
    with pytest.raises(mcplink.UserNotAuthenticated, match="not connected"):
        alice.oauth.refresh(server="o")
    a = crm["assistant"]
    with pytest.raises(mcplink.UpstreamError) as ei:
        ann.tool.call(assistant=a, tool="CRM__throw", arguments={"code": -32001, "message": "boom"})
    assert ei.value.reason == "rpc_error" and ei.value.rpc_error == {"code": -32001, "message": "boom"}
    with pytest.raises(mcplink.Timeout) as ei:
        ann.tool.call(assistant=a, tool="CRM__slow", arguments={"ms": 5000}, timeout_ms=300)
    assert ei.value.reason == "timeout"
    with pytest.raises(mcplink.TooLarge):
        ann.tool.call(assistant=a, tool="CRM__large", arguments={"bytes": 17 * 1024 * 1024})


def test_key_unavailable(engine, tmp_path):
    ann = engine.as_user("acme", "ann")
    ann.server.create(name="k")
    ann.server.update(id="k", auth_type="api_key", api_key=API_KEY)
    engine.close()
    from conftest import new_engine
    with new_engine(tmp_path, key_file=None) as e2:
        with pytest.raises(mcplink.KeyUnavailable, match="key_file") as ei:
            e2.as_user("acme", "ann").server.update(id="k", api_key="another-key")
        assert ei.value.code == "key_unavailable"


def test_tool_results_come_back_unchanged(engine, crm):
    ann = engine.as_user("acme", "ann")
    r = ann.tool.call(assistant=crm["assistant"], tool="CRM__echo", arguments={"text": "héllo ✓", "n": 1})
    assert r["structuredContent"] == {"text": "héllo ✓", "arguments": {"text": "héllo ✓", "n": 1}}
    r = ann.tool.call(assistant=crm["assistant"], tool="CRM__fail", arguments={"message": "no"})
    assert r["isError"] is True


def test_public_api_is_documented():
    for name in mcplink.__all__:
        obj = getattr(mcplink, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, f"mcplink.{name} has no docstring"
    for cls in (mcplink.Engine, mcplink.Client):
        for n, m in vars(cls).items():
            if not n.startswith("_") and (inspect.isfunction(m) or isinstance(m, property)):
                assert m.__doc__, f"{cls.__name__}.{n} has no docstring"
                if inspect.isfunction(m):
                    assert "return" in m.__annotations__, f"{cls.__name__}.{n} has no return type hint"
