"""The machine facts a manifest records must not depend on what happened to be imported first."""

from __future__ import annotations

import subprocess
import sys

PROBE = "from collapselab.engine import environment; print(environment.blas_kernel())"


def test_the_blas_kernel_is_numpys_whatever_was_loaded_before_it():
    plain = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
    scipy_first = subprocess.run([sys.executable, "-c", "import scipy.linalg; " + PROBE],
                                 capture_output=True, text=True, check=True).stdout
    assert plain.strip() and plain == scipy_first
