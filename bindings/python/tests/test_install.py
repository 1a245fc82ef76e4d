"""The README's installation: a virtual environment and pip with no network access (no index, no
build isolation: Debian's setuptools and wheel), then the installed package outside the tree."""
import os
import subprocess
import sys

from conftest import LIBRARY, TOP


def test_readme_install_command_works_offline(tmp_path):
    readme = (TOP / "README.md").read_text()
    venv = tmp_path / "venv"
    # exactly the README's two commands, with the environment's path in place of .venv
    commands = ["python3 -m venv --system-site-packages .venv",
                ".venv/bin/pip install --no-index --no-build-isolation bindings/python"]
    for c in commands:
        assert c in readme, f"the README gives: {c}"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_INDEX_URL", "PIP_FIND_LINKS")}
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", http_proxy="http://127.0.0.1:9",
               https_proxy="http://127.0.0.1:9")   # any network use would fail
    py = sys.executable      # Debian's python3 (tests/python/binding.t runs this suite with it)
    for c in commands:
        argv = c.replace("python3", py, 1).replace(".venv", str(venv)).split()
        p = subprocess.run(argv, cwd=TOP, env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"{c}:\n{p.stdout}\n{p.stderr}"
    code = ("import mcplink, sys\n"
            "print(mcplink.__file__)\n"
            "with mcplink.Engine(db='x.db') as e:\n"
            "    print(e.as_system().engine.info()['version'])\n")
    env["MCPLINK_LIBRARY"] = LIBRARY
    p = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    where, version = p.stdout.split()
    assert where.startswith(str(venv)), "the installed copy was imported, not the source tree"
    assert version
    assert (venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
            / "mcplink" / "py.typed").exists(), "the package ships its type hints marker"
