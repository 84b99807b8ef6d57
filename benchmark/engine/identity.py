"""Run identity: the one definition of "the same experiment".

Two runs are the same experiment when the task (name, version, preset, configuration and
the data it was built from), the strategy (name, parameters, source code and whether it draws
extra real data) and the seed agree. The loop refuses to resume a directory of another
identity, the sweep skips a run only when a complete run of the same identity is there,
``submit`` groups seeds of one experiment, and the leaderboard's validator compares manifests
with it. How a strategy was spelled on the command line (``mix`` or ``mix[real_fraction=0.5]``)
and its citation describe a run without changing its identity.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collapselab.contracts import registry
from collapselab.formats.records import Manifest


def params_hash(params: Mapping[str, Any]) -> str:
    """Short content hash of a parameter dict (stable across runs and machines)."""
    return hashlib.sha256(json.dumps(dict(sorted(params.items())), allow_nan=False, ensure_ascii=False).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class TaskIdentity:
    name: str
    version: str
    preset: str
    config: Mapping[str, Any]
    data: Mapping[str, Any] = field(default_factory=dict)
    preset_config: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        """The preset name, plus a hash of the configuration when ``--set`` changed it."""
        if self.preset_config is not None and dict(self.config) == dict(self.preset_config):
            return self.preset
        return f"{self.preset}-{params_hash(self.config)}"


@dataclass(frozen=True)
class StrategyIdentity:
    name: str
    params: Mapping[str, Any]
    source_sha256: str | None
    uses_extra_real_data: bool = False
    #: Given as ``path/to/file.py:Class``: a file its author edits between runs (not part of the identity).
    from_file: bool = field(default=False, compare=False)

    @property
    def label(self) -> str:
        """The strategy's name, plus a hash of its parameters when it has any."""
        return f"{self.name}-{params_hash(self.params)}" if self.params else self.name

    @property
    def folder(self) -> str:
        """The name of its runs' folder: the label, plus (for a strategy given as a file) the start of
        its source's SHA-256, so an edited file starts a new run beside the old one."""
        return f"{self.label}-src{self.source_sha256[:8]}" if self.from_file and self.source_sha256 else self.label


@dataclass(frozen=True)
class RunIdentity:
    task: TaskIdentity
    strategy: StrategyIdentity
    seed: int

    def fields(self, with_seed: bool = True) -> list[tuple[str, Any]]:
        """(what, value) of every field that makes the identity, in a fixed order."""
        t, s = self.task, self.strategy
        found = [
            ("task name", t.name), ("task version", t.version), ("task preset", t.preset),
            ("task config", dict(t.config)), ("task data", dict(t.data)),
            ("strategy", s.name), ("strategy parameters", dict(s.params)),
            ("strategy source (sha256)", s.source_sha256), ("extra real data", s.uses_extra_real_data),
        ]
        return found + ([("seed", self.seed)] if with_seed else [])

    def key(self, with_seed: bool = True) -> str:
        """A canonical string of the identity (``with_seed=False``: the experiment all seeds share)."""
        return json.dumps([[what, value] for what, value in self.fields(with_seed)], sort_keys=True, allow_nan=False)

    def differences(self, other: RunIdentity) -> list[tuple[str, Any, Any]]:
        """(what, ours, theirs) for every field where ``other`` differs."""
        return [(what, a, b) for (what, a), (_, b) in zip(self.fields(), other.fields()) if a != b]

    def directory(self, root: Path) -> Path:
        """``root/<task>/<strategy folder>/<preset label>/seed-<k>``."""
        return Path(root) / self.task.name / self.strategy.folder / self.task.label / f"seed-{self.seed}"

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> RunIdentity:
        task, strategy = manifest.task, manifest.strategy
        return cls(
            TaskIdentity(task.name, task.version, task.preset, task.config, task.data),
            StrategyIdentity(strategy.name, strategy.params, strategy.source_sha256, strategy.uses_extra_real_data,
                             from_file=registry.is_file_spec(strategy.spec)),
            manifest.seed,
        )
