"""tests/python/pytest_tap.py: runs a pytest suite and prints TAP for prove (one line per test).

Usage: python3 pytest_tap.py TEST_DIR [PYTEST_ARGS...]. A skipped test counts as a failure (the
project's tests do not skip), and a failure's report is printed as TAP comments.
"""
import os
import sys

import pytest

out = os.fdopen(os.dup(1), "w", buffering=1)  # the real stdout, whatever pytest captures
sys.stdout = open(os.devnull, "w")             # pytest's own report: TAP replaces it


class Tap:
    def __init__(self) -> None:
        self.n = 0
        self.failed = 0

    def line(self, ok: bool, name: str, detail: str = "") -> None:
        self.n += 1
        if not ok:
            self.failed += 1
        out.write(f"{'ok' if ok else 'not ok'} {self.n} - {name}\n")
        for s in detail.splitlines():
            out.write(f"#   {s}\n")

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.line(False, f"collect {report.nodeid}", report.longreprtext)

    def pytest_runtest_logreport(self, report) -> None:
        name = report.nodeid.split("/")[-1]
        if report.when == "call":
            if report.skipped:
                self.line(False, f"{name} (skipped: tests here do not skip)", str(report.longrepr))
            else:
                self.line(report.passed, name, "" if report.passed else report.longreprtext)
        elif report.failed:
            self.line(False, f"{name} ({report.when})", report.longreprtext)
        elif report.skipped:
            self.line(False, f"{name} (skipped: tests here do not skip)", str(report.longrepr))

    def pytest_sessionfinish(self) -> None:
        out.write(f"1..{self.n}\n")


tap = Tap()
rc = pytest.main(["-p", "no:cacheprovider", *sys.argv[1:]], plugins=[tap])
if tap.n == 0:
    out.write("1..0\nBail out! no tests ran\n")
sys.exit(1 if (rc != 0 or tap.failed or tap.n == 0) else 0)
