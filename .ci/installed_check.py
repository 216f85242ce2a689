"""pytest plugin for `make test-wheel`: the suite must run against the installed wheel.

Loaded with ``-p installed_check`` by .ci/test_installed.sh. Stops the run before any test
unless ``ptyfast`` (and its extension) come from the environment's site-packages and the
source tree's ``python/`` is not importable (``PTYFAST_SOURCE_TREE`` names the checkout), and
prints where ``ptyfast`` came from in the run's header.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

import pytest


def _where() -> tuple[Path, Path]:
    import ptyfast
    import ptyfast._core

    return Path(ptyfast.__file__).resolve(), Path(ptyfast._core.__file__).resolve()


def pytest_configure(config: pytest.Config) -> None:
    package, extension = _where()
    site = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    source = Path(os.environ["PTYFAST_SOURCE_TREE"]).resolve() / "python"
    problems = []
    if not any(package.is_relative_to(s) and extension.is_relative_to(s) for s in site):
        problems.append(f"ptyfast ({package}, {extension}) is not in site-packages {site}")
    if package.is_relative_to(source):
        problems.append(f"ptyfast was imported from the source tree {source}")
    if any(Path(p or ".").resolve() == source for p in sys.path):
        problems.append(f"the source tree {source} is on sys.path")
    if extension.name != "_core.abi3.so":
        problems.append(f"the extension is {extension.name}, not the stable-ABI _core.abi3.so")
    if problems:
        raise pytest.UsageError("not testing the installed wheel: " + "; ".join(problems))


def pytest_report_header(config: pytest.Config) -> list[str]:
    import ptyfast
    from ptyfast import _kernels

    package, extension = _where()
    return [
        f"ptyfast {ptyfast.__version__} installed at {package.parent} "
        f"(extension {extension.name}, SIMD level {_kernels.simd_level()})"
    ]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With ``PTYFAST_NO_SKIPS=1`` (the full run: every extra installed) a skipped test fails
    the run: a missing dependency must not hide a test."""
    if os.environ.get("PTYFAST_NO_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        for report in skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
            print(f"\nskipped in a run that must skip nothing: {report.nodeid}: {reason}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
