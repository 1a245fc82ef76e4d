"""Engine options by name, opening and closing."""
import os
import stat
import threading

import pytest

import mcplink
from conftest import CERTS, LIBRARY, TOP, new_engine


def test_every_option_by_name(tmp_path):
    log = tmp_path / "engine.log"
    pol = tmp_path / "policies"
    pol.mkdir()
    (pol / "default.lua").write_text("-- test policy\nreturn {}\n")
    e = mcplink.Engine(db=tmp_path / "e.db", key_file=tmp_path / "k.key", policies=pol,
                       lua_dir=TOP / "lua", ca_file=CERTS / "ca.pem", pool_size=3, log_level="info",
                       log_file=log, oauth_redirect_uri="https://host.example/cb",
                       oauth_client_metadata_url="https://host.example/client.json", library=LIBRARY)
    with e:
        s = e.as_system()
        info = s.engine.info()
        assert info["storage"] == str(tmp_path / "e.db")
        assert info["pool_size"] == 3
        assert info["policies"] == str(pol)
        assert info["lua"] == str(TOP / "lua")
        md = s.oauth.client_metadata()
        assert md["client_id"] == "https://host.example/client.json"
        assert md["redirect_uris"][0] == "https://host.example/cb"
        s.tenant.create(name="acme")
        s.user.create(tenant="acme", name="ann", role="admin")
        ann = e.as_user("acme", "ann")
        ann.server.create(name="k")
        ann.server.update(id="k", auth_type="api_key", api_key="a-secret-value")
    assert stat.S_IMODE(os.stat(tmp_path / "k.key").st_mode) == 0o600, "key_file holds the key ring"
    text = log.read_text()
    assert "policies in force" in text, "log_level info and log_file: info lines go to the file"
    assert "a-secret-value" not in text


def test_unknown_option_is_refused_by_name(tmp_path):
    with pytest.raises(mcplink.InvalidArgument) as ei:
        mcplink.Engine(db=tmp_path / "e.db", library=LIBRARY, pol_size=4)
    assert ei.value.field == "pol_size"
    assert "unknown engine option 'pol_size'" in str(ei.value)
    assert "pool_size" in str(ei.value), "the known names are listed"
    assert not (tmp_path / "e.db").exists(), "nothing was opened"


@pytest.mark.parametrize("name,value,hint", [
    ("pool_size", 0, "1 to 256"), ("pool_size", 257, "1 to 256"), ("pool_size", "many", "1 to 256"),
    ("log_level", "loud", "debug, info, warn, error"), ("ca_file", "x" * 5000, "4096"),
])
def test_bad_option_value_names_option_and_rule(tmp_path, name, value, hint):
    with pytest.raises(mcplink.InvalidArgument) as ei:
        mcplink.Engine(db=tmp_path / "e.db", library=LIBRARY, **{name: value})
    assert ei.value.field == name and f"engine option {name}" in str(ei.value) and hint in str(ei.value)


def test_option_types_are_checked(tmp_path):
    with pytest.raises(TypeError, match="option pool_size must be a string"):
        mcplink.Engine(db=tmp_path / "e.db", library=LIBRARY, pool_size=True)
    with pytest.raises(ValueError, match="option db contains a NUL"):
        mcplink.Engine(db=str(tmp_path / "e\0.db"), library=LIBRARY)


def test_open_failure_raises_the_engines_error(tmp_path):
    with pytest.raises(mcplink.InvalidArgument) as ei:
        new_engine(tmp_path / "no" / "such" / "dir")
    assert ei.value.field == "db" and "cannot open database" in ei.value.message
    with pytest.raises(mcplink.InvalidArgument, match="log_file"):
        new_engine(tmp_path, log_file=str(tmp_path / "no" / "dir" / "log"))


def test_context_manager_and_idempotent_close(tmp_path):
    with new_engine(tmp_path) as e:
        assert not e.closed and "open" in repr(e)
        e.op("engine.info", system=True)
    assert e.closed and "closed" in repr(e)
    e.close()
    e.close()
    with pytest.raises(mcplink.EngineClosed):
        e.op("engine.info", system=True)


def test_close_from_many_threads_at_once(tmp_path):
    e = new_engine(tmp_path)
    e.op("engine.info", system=True)
    errors = []

    def closer():
        try:
            e.close()
        except BaseException as x:  # noqa: BLE001
            errors.append(x)
    ts = [threading.Thread(target=closer) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not errors and e.closed and not any(t.is_alive() for t in ts)


def test_engine_closed_when_garbage_collected(tmp_path):
    import gc
    e = new_engine(tmp_path)
    state = e._state
    del e
    gc.collect()
    assert state.handle is None, "the finalizer closed the engine"


def test_reopen_same_database(tmp_path):
    with new_engine(tmp_path) as e:
        e.as_system().tenant.create(name="acme")
    with new_engine(tmp_path) as e:
        assert e.as_system().tenant.get(id="acme")["name"] == "acme"
