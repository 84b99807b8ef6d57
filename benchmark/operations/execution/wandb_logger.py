"""Optional Weights & Biases logging of every generation (``collapselab run --wandb``).

Offline unless configured: the mode is ``$WANDB_MODE`` if set, else ``online`` when an API
key is in the environment and ``offline`` otherwise. Offline logs are written inside each
run directory (``wandb/``) and can be synced later with ``wandb sync``. The files in
``runs/`` stay the source of truth.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, cast

from collapselab.errors import CollapseLabError
from collapselab.formats.records import Manifest, Record

WandbMode = Literal["online", "offline", "disabled", "shared"]


def wandb_mode() -> WandbMode:
    """WANDB_MODE when set (checked), else online with an API key and offline without."""
    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    if mode not in ("online", "offline", "disabled", "shared"):
        raise CollapseLabError(f"WANDB_MODE={mode!r}: expected online, offline, disabled or shared")
    return cast(WandbMode, mode)


class WandbLogger:
    """A loop listener that mirrors each generation record into one W&B run per run directory."""

    def __init__(self, project: str = "collapselab") -> None:
        try:
            import wandb
        except ImportError:
            raise CollapseLabError("--wandb needs the wandb package: pip install 'collapselab[wandb]'") from None
        self._wandb = wandb
        self.project = project
        self._runs: dict[Path, Any] = {}

    def __call__(self, run_dir: Path, manifest: Manifest, record: Record) -> None:
        run = self._runs.get(run_dir)
        if run is None:
            strategy, task = manifest.strategy, manifest.task
            run = self._wandb.init(
                project=self.project,
                dir=str(run_dir),
                mode=wandb_mode(),
                name=f"{task.name}/{strategy.spec}/seed-{manifest.seed}",
                group=f"{task.name}/{task.preset}",
                config={"task": task.model_dump(mode="json"), "strategy": strategy.model_dump(mode="json"), "seed": manifest.seed},
                reinit="create_new",
            )
            self._runs[run_dir] = run
        data = {f"metrics/{k}": v for k, v in record.metrics.items()}
        data.update({f"compute/{k}": v for k, v in record.compute.model_dump().items()})
        data["composition/real"] = record.composition.real
        data["composition/total"] = record.composition.total
        run.log(data, step=record.generation)

    def close(self) -> None:
        for run in self._runs.values():
            run.finish()
        self._runs.clear()
