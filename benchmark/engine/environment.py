"""Machine facts recorded in every manifest: versions, the git commit and whether the checkout
was clean (``dirty``: :func:`collapselab.engine.sources.tree_dirty`), threads, the CPU and the BLAS kernel.

Floating-point results depend on the thread counts and on the BLAS kernel NumPy picks for the
CPU (OpenBLAS chooses one per micro-architecture: the same seed gives bit-identical numbers
only on the same kernel). The manifest records both, read with threadpoolctl, so that
``reproduce`` can tell an exact re-run from one on other hardware.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collapselab.engine import sources


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str | None:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def blas() -> list[dict[str, Any]]:
    """The BLAS/OpenMP libraries loaded in this process: library, version, kernel (architecture), threads."""
    from threadpoolctl import threadpool_info

    keep = ("user_api", "internal_api", "version", "architecture", "num_threads", "threading_layer")
    return [{k: info.get(k) for k in keep if k in info} for info in threadpool_info()]


def blas_kernel() -> str | None:
    """A short label of NumPy's BLAS kernel, e.g. ``openblas 0.3.27 SkylakeX``: the library NumPy
    loaded (found by its path), whatever else (SciPy's own OpenBLAS) was loaded before it, so
    that the label does not depend on import order."""
    import numpy as np
    from threadpoolctl import threadpool_info

    found = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    numpy_dir = os.path.dirname(np.__file__)  # its wheels keep the library in numpy.libs/ beside it
    own = [info for info in found if str(info.get("filepath", "")).startswith(numpy_dir)] or found
    if not own:
        return None
    return " ".join(str(own[0][k]) for k in ("internal_api", "version", "architecture") if own[0].get(k))


#: The facts of an environment that change floating-point results: runs that agree on all of them
#: give the same numbers for the same seeds, bit for bit.
NUMERICS_FACTS = ("blas_kernel", "omp_num_threads", "cpu", "torch", "numpy")
#: Manifest environment key: the generations at which a resumed session ran with other
#: :data:`NUMERICS_FACTS` than the session before it (absent when every session agreed).
NUMERICS_CHANGED = "numerics_changed_at"


def numerics_changes(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The :data:`NUMERICS_FACTS` on which ``now`` differs from ``before``, as ``fact: old -> new``."""
    return [f"{fact}: {before.get(fact)} -> {now.get(fact)}" for fact in NUMERICS_FACTS if before.get(fact) != now.get(fact)]


def machine(recorded: Mapping[str, Any]) -> str:
    """The kind of machine a run's recorded environment names: its CPU model and its BLAS kernel (run times
    compare only within one kind)."""
    kernel = str(recorded.get("blas_kernel") or "").split() or ["?"]
    return f"{recorded.get('cpu') or '?'}, {kernel[-1]}"


def thread_settings() -> dict[str, Any]:
    """Thread counts that change floating-point results (torch's, if loaded, and the env caps)."""
    torch = sys.modules.get("torch")
    return {
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
    }


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


def environment(device: str) -> dict[str, Any]:
    """Versions and machine facts recorded in every manifest."""
    import numpy  # noqa: F401  (loads NumPy's BLAS, so threadpoolctl can see it)

    return {
        "collapselab": _version("collapselab"),
        "git_commit": _git_commit(),
        "dirty": sources.tree_dirty(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "blas": blas(),
        "blas_kernel": blas_kernel(),
        "device": device,
        **thread_settings(),
    }
