"""Shared fixtures of the binding's tests: the package from this source tree, an engine on a fresh
database with a tenant and users, and the SDK fixture servers (loopback HTTPS, the test CA)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parent                      # bindings/python
TOP = PACKAGE_ROOT.parents[1]                   # the checkout
sys.path.insert(0, str(PACKAGE_ROOT))           # usable from the source tree

import mcplink  # noqa: E402

BUILD = Path(os.environ.get("MCPLINK_BUILD", TOP / "build"))
CERTS = Path(os.environ.get("FIXTURE_CERTS", BUILD / "certs"))
LIBRARY = os.environ.get("MCPLINK_LIBRARY") or str(BUILD / "libmcplink.so")
API_KEY = "binding-test-key-0123456789"


def start_fixture(name: str, *args: str) -> dict:
    """Starts a fixture server (tests/fixtures/start.sh) that exits with this process."""
    env = dict(os.environ, FIXTURE_PARENT_PID=str(os.getpid()), FIXTURE_CERTS=str(CERTS),
               FIXTURE_MAX_LIFETIME_S="600")
    script = TOP / "tests" / "fixtures" / ("oauth/start.sh" if name == "oauth" else "start.sh")
    argv = ["sh", str(script), *(() if name == "oauth" else (name,)), *args]
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        pytest.fail(f"could not start fixture {name}: {p.stderr.strip()}", pytrace=False)
    return json.loads(p.stdout.splitlines()[0])


def stop_fixture(line: dict) -> None:
    subprocess.run(["sh", str(TOP / "tests" / "fixtures" / "stop.sh"), str(line["pid"])], timeout=30)


@pytest.fixture(scope="session")
def server_v2():
    """The SDK v2 fixture server, requiring the API key API_KEY."""
    line = start_fixture("server-v2", "--api-key", API_KEY)
    yield line
    stop_fixture(line)


def new_engine(tmp_path: Path, **options) -> mcplink.Engine:
    options.setdefault("library", LIBRARY)
    options.setdefault("ca_file", str(CERTS / "ca.pem"))
    options.setdefault("key_file", str(tmp_path / "e.key"))
    return mcplink.Engine(db=str(tmp_path / "e.db"), **options)


@pytest.fixture
def engine(tmp_path):
    """An engine with tenant acme: ann (admin), alice and bob (members); loopback URLs allowed."""
    e = new_engine(tmp_path)
    s = e.as_system()
    s.settings.set(allow_private_urls=True)
    s.tenant.create(name="acme")
    s.user.create(tenant="acme", name="ann", role="admin")
    for u in ("alice", "bob"):
        s.user.create(tenant="acme", name=u, role="member")
    yield e
    e.close()


@pytest.fixture
def crm(engine, server_v2):
    """Server CRM on the v2 fixture (API key), enabled, attached to ann's personal assistant.
    Returns {"server", "assistant", "control"}."""
    ann = engine.as_user("acme", "ann")
    srv = ann.server.create(name="CRM", description="fixture")
    ann.server.update(id=srv["id"], url=server_v2["url"], auth_type="api_key", api_key=API_KEY)
    ann.tool.enable(server="CRM")
    ast = ann.assistant.create(name="bot")
    ann.assistant.attach(assistant=ast["id"], server="CRM")
    return {"server": srv["id"], "assistant": ast["id"], "control": server_v2["control"]}


@pytest.fixture(scope="session")
def server_v1():
    """The SDK v1 fixture server (a handshake-era session), requiring the API key API_KEY."""
    line = start_fixture("server-v1", "--api-key", API_KEY)
    yield line
    stop_fixture(line)


@pytest.fixture
def eras(engine, server_v1, server_v2):
    """Servers v1 (SDK v1, handshake era) and v2 (SDK v2, 2026-07-28) attached to ann's personal
    assistant. Returns {"assistant", "v1": fixture line, "v2": fixture line}; tools are v1__NAME
    and v2__NAME."""
    ann = engine.as_user("acme", "ann")
    ast = ann.assistant.create(name="bot")
    for name, line in (("v1", server_v1), ("v2", server_v2)):
        attach_server(ann, ast["id"], name, line)
    return {"assistant": ast["id"], "v1": server_v1, "v2": server_v2}


def attach_server(ann, assistant: str, name: str, line: dict, **update) -> dict:
    """Server NAME at the fixture's URL (API key), its tools enabled, attached to the assistant;
    returns the server record as created."""
    srv = ann.server.create(name=name)
    ann.server.update(id=srv["id"], url=line["url"], auth_type="api_key", api_key=API_KEY, **update)
    ann.tool.enable(server=name)
    ann.assistant.attach(assistant=assistant, server=name)
    return srv


def control_log(line: dict) -> dict:
    """What a fixture server saw: {"requests": [...], "cancelled": [{id, time}, ...]}."""
    import ssl
    import urllib.request
    ctx = ssl.create_default_context(cafile=str(CERTS / "ca.pem"))
    with urllib.request.urlopen(line["control"] + "/log", context=ctx, timeout=10) as r:
        return json.loads(r.read())
