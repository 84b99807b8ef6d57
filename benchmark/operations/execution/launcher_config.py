"""The launcher configuration file (``--launcher-config FILE``, YAML or JSON).

One file describes where and how the jobs of a sweep run; each launcher reads the keys that
apply to it and ignores the cluster-only ones, so the file of a Slurm sweep can first be tried
on one machine with ``--launcher submitit-local``::

    partition: gpu          # Slurm partition                          (slurm)
    account: my-project     # account to charge                        (slurm)
    qos: normal             # quality of service                       (slurm)
    time: 240               # minutes per job (required for slurm)     (slurm, submitit-local)
    gpus_per_job: 1         # GPUs per job (--gpus-per-job overrides)  (all)
    cpus_per_job: 4         # CPU cores per job = threads per run      (slurm)
    mem_gb: 16              # memory per job                           (slurm)
    array_parallelism: 32   # array tasks running at once (--jobs overrides)   (slurm)
    constraint: a100        # node features                            (slurm)
    exclude: node[01-02]    # nodes to avoid                           (slurm)
    setup:                  # shell lines run before each job          (slurm)
      - module load cuda/12.4
    slurm_parameters:       # any further sbatch options               (slurm)
      mail-type: END
    max_requeues: 3         # requeues after a time-out or preemption  (slurm, submitit-local)
    signal_delay_s: 120     # warning signal this long before the time limit (slurm, submitit-local)
    folder: runs/.submitit  # submitit's logs and job files (default: <out>/.submitit)
    wait: true              # wait for the jobs and print the summary  (slurm)
    python: /path/to/venv/bin/python   # the interpreter on the nodes  (slurm)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from collapselab.errors import ConfigError, ResultFileError
from collapselab.storage import strict_json

MAX_BYTES = 64 * 1024
#: The deepest nesting of a launcher config (its own keys need 3 levels).
MAX_DEPTH = 16

_TEXT = {"type": "string", "minLength": 1, "pattern": r"^[^\n\r]*$"}
_COUNT = {"type": "integer", "minimum": 1}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "partition": _TEXT,
        "account": _TEXT,
        "qos": _TEXT,
        "constraint": _TEXT,
        "exclude": _TEXT,
        "job_name": _TEXT,
        "comment": _TEXT,
        "python": _TEXT,
        "folder": _TEXT,
        "time": _COUNT,
        "gpus_per_job": {"type": "integer", "minimum": 0},
        "cpus_per_job": _COUNT,
        "mem_gb": {"type": "number", "exclusiveMinimum": 0},
        "array_parallelism": _COUNT,
        "max_requeues": {"type": "integer", "minimum": 0},
        "signal_delay_s": {"type": "integer", "minimum": 0},
        "wait": {"type": "boolean"},
        "setup": {"type": "array", "items": _TEXT},
        "slurm_parameters": {
            "type": "object",
            "propertyNames": {"pattern": r"^[a-z][a-z0-9-]*$"},
            "additionalProperties": {"type": ["string", "integer", "boolean"]},
        },
    },
}


@dataclass(frozen=True)
class LauncherConfig:
    """The settings of the launcher configuration file (every key optional; see the module docstring)."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    exclude: str | None = None
    job_name: str = "collapselab"
    comment: str | None = None
    python: str | None = None
    folder: str | None = None
    time: int | None = None
    gpus_per_job: int = 0
    cpus_per_job: int | None = None
    mem_gb: float | None = None
    array_parallelism: int | None = None
    max_requeues: int = 3
    signal_delay_s: int = 120
    wait: bool = True
    setup: tuple[str, ...] = ()
    slurm_parameters: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], source: str = "launcher config") -> LauncherConfig:
        """Validate ``values`` against :data:`SCHEMA`; a bad key or value is a :class:`ConfigError` naming it."""
        try:
            strict_json.validate(values, SCHEMA, source)
        except ResultFileError as exc:
            keys = ", ".join(f.name for f in fields(cls))
            raise ConfigError(f"{exc} (valid keys: {keys})") from None
        return cls(**{**values, "setup": tuple(values.get("setup", ()))})


def load_config(path: Path | None) -> LauncherConfig:
    """The configuration in ``path`` (``.json``: strict JSON; otherwise YAML), or the defaults for ``None``."""
    if path is None:
        return LauncherConfig()
    try:
        text = strict_json.read_text(Path(path), MAX_BYTES)
    except ResultFileError as exc:
        raise ConfigError(f"--launcher-config: {exc}") from None
    if Path(path).suffix.lower() == ".json":
        try:
            values = strict_json.loads(text, str(path))
        except ResultFileError as exc:
            raise ConfigError(str(exc)) from None
    else:
        values = _load_yaml(text, Path(path))
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a launcher config is a mapping of keys to values, got {type(values).__name__}")
    return LauncherConfig.from_mapping(values, str(path))


def _bounded_loader() -> type:
    """A YAML ``SafeLoader`` that refuses aliases (a few hundred bytes of nested aliases expand to
    gigabytes) and nesting deeper than :data:`MAX_DEPTH` (which overflows the recursive composer)."""
    import yaml
    from yaml.composer import ComposerError

    class BoundedLoader(yaml.SafeLoader):
        depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise ComposerError(None, None, "aliases (*name) are not allowed in a launcher config",
                                    self.peek_event().start_mark)
            if self.depth >= MAX_DEPTH:
                raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark)
            self.depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    return BoundedLoader


def _load_yaml(text: str, path: Path) -> Any:
    import yaml

    try:
        values = yaml.load(text, Loader=_bounded_loader())  # a SafeLoader
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path}: invalid YAML{line}: {getattr(exc, 'problem', None) or exc}") from None
    # YAML reads dates and other non-JSON types; keep only what JSON can say (the schema checks the rest).
    try:
        json.dumps(values, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: unsupported value in the launcher config: {exc}") from None
    return values
