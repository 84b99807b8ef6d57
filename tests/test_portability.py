"""Tests that compare numbers with published entries pass on any machine, not only on the one the
entries were made on.

Such tests carry the ``published_numbers`` marker and compare through
:func:`tests.helpers.assert_matches_published` (bit for bit only on the recorded BLAS kernel and
threads). Here they run again in a process whose NumPy uses another OpenBLAS kernel than this
machine's (``OPENBLAS_CORETYPE``, set for that process only), so an assertion that holds only on
the entries' kernel fails in this suite instead of on a contributor's machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from collapselab.engine import environment

TESTS = Path(__file__).resolve().parent
MARKER = "published_numbers"
#: OpenBLAS kernels, newest instruction set first, with the CPU flag each needs to run.
KERNELS = (("SkylakeX", "avx512f"), ("Haswell", "avx2"), ("Sandybridge", "avx"), ("Prescott", "sse3"))
#: Kernel names under which OpenBLAS runs another kernel's code (Zen runs the Haswell kernels).
SAME_CODE = {"Zen": "Haswell"}
#: Prints NumPy's kernel as manifests record it, then runs pytest in the same process.
RUNNER = ("import sys, pytest; from collapselab.engine import environment; "
          "print('kernel:', environment.blas_kernel(), flush=True); sys.exit(pytest.main(sys.argv[1:]))")


def cpu_flags() -> set[str]:
    try:
        lines = Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
    except OSError:
        return set()
    return {flag for line in lines if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def another_kernel(current: str, flags: set[str]) -> str | None:
    """The newest OpenBLAS kernel this CPU can run whose code differs from the ``current`` kernel's."""
    running = SAME_CODE.get(current, current)
    return next((name for name, flag in KERNELS if flag in flags and name != running), None)


def marked_files() -> list[Path]:
    """The test files that hold tests marked ``published_numbers`` (this one aside)."""
    return sorted(path for path in TESTS.rglob("test_*.py")
                  if path != Path(__file__).resolve() and f"pytest.mark.{MARKER}" in path.read_text())


def test_another_kernel_is_one_this_cpu_runs_and_not_the_current_one():
    assert another_kernel("SkylakeX", {"avx512f", "avx2", "avx", "sse3"}) == "Haswell"
    assert another_kernel("Haswell", {"avx512f", "avx2", "avx", "sse3"}) == "SkylakeX"
    assert another_kernel("Haswell", {"avx2", "avx", "sse3"}) == "Sandybridge"
    assert another_kernel("Zen", {"avx2", "avx", "sse3"}) == "Sandybridge"
    assert another_kernel("Prescott", {"sse3"}) is None


def test_tests_comparing_published_numbers_pass_under_another_blas_kernel(tmp_path):
    ours = environment.blas_kernel() or ""
    if not ours.startswith("openblas "):
        pytest.skip(f"NumPy's BLAS is not OpenBLAS ({ours or 'none found'}): no kernel to force")
    other = another_kernel(ours.rsplit(" ", 1)[-1], cpu_flags())
    if other is None:
        pytest.skip(f"this CPU runs no OpenBLAS kernel but {ours}'s")
    files = marked_files()
    expected = sum(path.read_text().count(f"pytest.mark.{MARKER}") for path in files)
    assert expected >= 3, f"the tests marked {MARKER} went missing: {files}"
    command = [sys.executable, "-c", RUNNER, "-q", "-p", "no:cacheprovider", "-n", "0", "-m", MARKER,
               f"--basetemp={tmp_path / 'inner'}", *map(str, files)]
    done = subprocess.run(command, cwd=TESTS.parent, env={**os.environ, "OPENBLAS_CORETYPE": other},
                          capture_output=True, text=True, timeout=300)
    printed = done.stdout + done.stderr
    forced = re.search(r"^kernel: (.*)$", done.stdout, re.M)
    assert forced and forced.group(1) != ours, f"OPENBLAS_CORETYPE={other} did not change NumPy's kernel ({ours}):\n{printed}"
    assert done.returncode == 0, f"under {forced.group(1)} (this machine: {ours}):\n{printed[-6000:]}"
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed and int(passed.group(1)) >= expected, printed[-3000:]
