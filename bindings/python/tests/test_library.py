"""Finding and loading libmcplink: explicit path, MCPLINK_LIBRARY, build tree, system; clear errors."""
import os
import subprocess
import sys

import pytest

import mcplink
from mcplink import _library
from conftest import BUILD, LIBRARY, PACKAGE_ROOT, TOP, new_engine


def test_explicit_path_loads_and_reports_version():
    lib = mcplink.load_library(LIBRARY)
    assert isinstance(lib, mcplink.Library)
    assert lib.path == LIBRARY
    cli = subprocess.run([str(BUILD / "mcplink"), "version"], capture_output=True, text=True)
    assert lib.version and lib.version in cli.stdout
    assert mcplink.load_library(LIBRARY) is lib, "a library is loaded once per path"


def test_wrong_explicit_path_names_it(tmp_path):
    bad = tmp_path / "nope" / "libmcplink.so"
    with pytest.raises(mcplink.LibraryNotFound) as ei:
        mcplink.load_library(bad)
    assert str(bad) in str(ei.value) and "no such file" in str(ei.value)
    assert "explicit path" in str(ei.value)
    with pytest.raises(mcplink.LibraryNotFound, match="nope/libmcplink.so"):
        mcplink.Engine(db=str(tmp_path / "x.db"), library=str(bad))


def test_a_library_that_is_not_mcplink_is_refused(tmp_path):
    libc = next(p for p in ("/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6",
                            "/usr/lib/x86_64-linux-gnu/libc.so.6") if os.path.exists(p))
    with pytest.raises(mcplink.LibraryNotFound, match="is not an mcplink library .missing mcpl_"):
        mcplink.load_library(libc)
    junk = tmp_path / "libjunk.so"
    junk.write_text("not an ELF file")
    with pytest.raises(mcplink.LibraryNotFound, match="libjunk.so"):
        mcplink.load_library(junk)


def test_environment_variable_is_used_and_named(monkeypatch, tmp_path):
    monkeypatch.setenv("MCPLINK_LIBRARY", LIBRARY)
    assert _library.candidates() == [("$MCPLINK_LIBRARY", LIBRARY)]
    assert mcplink.load_library().path == LIBRARY
    monkeypatch.setenv("MCPLINK_LIBRARY", str(tmp_path / "missing.so"))
    with pytest.raises(mcplink.LibraryNotFound) as ei:
        mcplink.load_library()
    msg = str(ei.value)
    assert "missing.so ($MCPLINK_LIBRARY): no such file" in msg
    assert "build tree" not in msg, "a wrong MCPLINK_LIBRARY is an error, not a reason to load another"


def test_search_order_without_path_or_variable(monkeypatch):
    monkeypatch.delenv("MCPLINK_LIBRARY", raising=False)
    c = _library.candidates()
    assert c[0] == ("build tree", str(TOP / "build" / "libmcplink.so"))
    assert [w for w, _ in c[1:]] and all(w.startswith("system") for w, _ in c[1:])
    assert ("system", "/usr/local/lib/libmcplink.so.0") in c


def test_nothing_found_lists_every_place_tried(tmp_path):
    # a copy of the package outside the checkout, no variable, no system library
    pkg = tmp_path / "site" / "mcplink"
    pkg.mkdir(parents=True)
    for f in (PACKAGE_ROOT / "mcplink").glob("*.py"):
        (pkg / f.name).write_text(f.read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("MCPLINK_LIBRARY", "LD_LIBRARY_PATH", "PYTHONPATH")}
    code = ("import mcplink\ntry:\n    mcplink.Engine(db='x.db').close()\n    print('opened')\n"
            "except mcplink.LibraryNotFound as e:\n    print(e)\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "site", env=env, capture_output=True,
                       text=True, timeout=60)
    if any(os.path.exists(f) for f in ("/usr/local/lib/libmcplink.so.0", "/usr/lib/libmcplink.so.0")):
        assert p.stdout.strip() == "opened", "the installed system library is the last resort"
        return
    assert "libmcplink could not be loaded; tried:" in p.stdout, p.stdout + p.stderr
    assert "libmcplink.so.0 (system)" in p.stdout
    assert "/usr/local/lib/libmcplink.so.0 (system): no such file" in p.stdout
    assert "MCPLINK_LIBRARY" in p.stdout, "the message says how to point at a library"


def test_engine_reports_its_library(tmp_path):
    with new_engine(tmp_path) as e:
        assert e.library.path == LIBRARY
        assert LIBRARY in repr(e)
