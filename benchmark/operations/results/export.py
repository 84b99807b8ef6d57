"""Results as data: run directories and submission files as one table (pandas), CSV, Parquet or JSON.

One row per (task, strategy and parameters, seed, generation) of every run found, whatever it
was read from. The columns are the identity of the run, then every field of the generation
record, flattened along its JSON path::

    source, entry, task, task_version, preset, config_hash, config, strategy, strategy_name,
    params, uses_extra_real_data, seed, status, generation,
    metrics.<name>...            every metric (loss first), as recorded
    composition.real, composition.synthetic (all origins), composition.synthetic.<g>...,
    composition.total, composition.fresh_real, composition.weighted
    compute.examples, compute.steps, compute.samples (and any other counter)
    seconds.<phase>...           wall seconds per phase
    fit_options                  the options of that generation's fit, as canonical JSON

With ``--profile`` the table is the collapse profile instead (:func:`profile_rows`): one row per
definition for each entry over its seeds and for each run, with value, interval, verdict and rule.

``config`` and ``params`` are canonical JSON (sorted keys), so they compare and group as
strings; ``strategy`` is the display label (``mix[real_fraction=0.5]``). Numbers are copied
from the records unchanged: a CSV written here and read back with ``pandas.read_csv`` gives the
same floats, bit for bit (pandas 3; with pandas 2 pass ``float_precision="round_trip"``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collapselab.engine.identity import params_hash
from collapselab.engine.rundir import GENERATIONS, MANIFEST, Run, find_runs
from collapselab.errors import ParameterError, ResultFileError
from collapselab.formats import records, submission
from collapselab.formats.records import Manifest, Record, StrategySection
from collapselab.scoring import profile
from collapselab.scoring.report import Group, group_runs, strategy_display, summary_rows
from collapselab.storage.atomic import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    import pandas

FORMATS = ("csv", "parquet", "json")
IDENTITY_COLUMNS = (
    "source", "entry", "task", "task_version", "preset", "config_hash", "config", "strategy", "strategy_name",
    "params", "uses_extra_real_data", "seed", "status", "generation",
)
COMPOSITION_FIELDS = ("real", "synthetic", "total", "fresh_real", "weighted")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False, ensure_ascii=False)


def record_columns(record: Record) -> dict[str, Any]:
    """One generation record flattened to ``group.field`` columns (see the module docstring)."""
    columns: dict[str, Any] = {"generation": record.generation}
    metrics = record.metrics
    for name in ["loss", *sorted(set(metrics) - {"loss"})]:
        columns[f"metrics.{name}"] = metrics[name]
    composition = record.composition.model_dump()
    synthetic = record.composition.synthetic
    for key in COMPOSITION_FIELDS:
        if key == "synthetic":
            columns["composition.synthetic"] = int(sum(synthetic.values()))
            for origin in sorted(synthetic, key=int):
                columns[f"composition.synthetic.{origin}"] = synthetic[origin]
        else:
            columns[f"composition.{key}"] = composition[key]
    for group, values in (("compute", record.compute.model_dump()), ("seconds", record.seconds)):
        for key in sorted(values):
            columns[f"{group}.{key}"] = values[key]
    columns["fit_options"] = _canonical(record.fit_options)
    return columns


def _run_rows(run: Run) -> Iterator[dict[str, Any]]:
    task, strategy = run.manifest.task, run.manifest.strategy
    identity = {
        "source": str(run.path),
        "entry": run.entry,
        "task": task.name,
        "task_version": task.version,
        "preset": task.preset,
        "config_hash": params_hash(task.config),
        "config": _canonical(task.config),
        "strategy": strategy_display(strategy.name, strategy.params),
        "strategy_name": strategy.name,
        "params": _canonical(strategy.params),
        "uses_extra_real_data": strategy.uses_extra_real_data,
        "seed": run.seed,
        "status": run.manifest.status,
    }
    for record in run.records:
        yield {**identity, **record_columns(record)}


def _submission_runs(path: Path) -> Iterator[Run]:
    entry = submission.read(path)
    for section in entry["tasks"].values():
        for run in section["runs"]:
            yield Run(path, Manifest.model_validate(run["manifest"]), records.records_of(run), entry["name"])


def _is_submission_file(path: Path) -> bool:
    return path.is_file() and path.suffix == ".json" and path.name != MANIFEST


def runs_of(paths: Sequence[Path | str]) -> list[Run]:
    """Every run in ``paths``: run directories, folders of runs, submission files (each of their runs,
    with ``entry`` set), or folders of submission files."""
    found: list[Run] = []
    for given in paths:
        path = Path(given)
        if _is_submission_file(path):
            found.extend(_submission_runs(path))
        elif path.is_dir() and not (path / MANIFEST).is_file() and not any(path.rglob(MANIFEST)):
            files = sorted(p for p in path.glob("*.json") if _is_submission_file(p))
            if not files:
                raise ResultFileError(f"{path}: holds no run directories and no submission files")
            for file in files:
                found.extend(_submission_runs(file))
        else:
            found.extend(find_runs([path]))
    return found


def rows(paths: Sequence[Path | str]) -> list[dict[str, Any]]:
    """Every generation of every run in ``paths`` (:func:`runs_of`)."""
    return _rows(runs_of(paths))


def _rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [row for run in runs for row in _run_rows(run)]


SCORE_COLUMNS = ("entry", "task", "task_version", "preset", "strategy", "track", "extra_compute", "synthetic_share",
                 "seeds", "generations", "loss_initial", "loss_final", "ratio", "ratio_ci_low", "ratio_ci_high",
                 "score", "score_ci_low", "score_ci_high")


def score_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """One row per (task setting, strategy or entry) of ``runs``: the report's summary
    (:func:`collapselab.scoring.report.summary_rows`: score against replace paired by seed when replace
    is among them, with its Fieller interval; L_G/L_0 with its Student-t interval; track, extra
    compute and synthetic share from the records)."""
    found = []
    for group, row in zip(*_summaries(runs), strict=True):
        score = row["score"]
        found.append({
            "entry": group.entry, "task": group.task, "task_version": group.version, "preset": group.preset,
            "strategy": _display(group.runs[0].manifest.strategy), "track": row["track"], "extra_compute": row["extra_compute"],
            "synthetic_share": row["synthetic_share"], "seeds": len(row["seeds"]), "generations": row["generations"],
            "loss_initial": row["initial"].mean, "loss_final": row["final"].mean, "ratio": row["ratio"].mean,
            "ratio_ci_low": row["ratio"].ci_low, "ratio_ci_high": row["ratio"].ci_high,
            "score": None if score is None else score.mean, "score_ci_low": None if score is None else score.ci_low,
            "score_ci_high": None if score is None else score.ci_high,
        })
    return found


PROFILE_COLUMNS = ("source", "entry", "task", "task_version", "preset", "config_hash", "strategy", "scope", "seeds",
                   "definition", "measure", "value", "ci_low", "ci_high", "n", "significance", "verdict", "rule")


def profile_rows(runs: Sequence[Run]) -> list[dict[str, Any]]:
    """The collapse profile (:mod:`collapselab.scoring.profile`) of ``runs``, one row per definition:
    for each entry (a submission's task section, or the run directories of one task, version, preset,
    configuration and strategy) over its seeds (scope ``seeds``), and for each run (scope ``run``)."""
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for run in runs:
        task, strategy = run.manifest.task, run.manifest.strategy
        identity = {"source": str(run.path) if run.entry is not None else None, "entry": run.entry,
                    "task": task.name, "task_version": task.version, "preset": task.preset,
                    "config_hash": params_hash(task.config), "strategy": _display(strategy)}
        group = groups.setdefault(tuple(str(v) for v in identity.values()),
                                  {"identity": identity, "name": strategy.name, "runs": {}, "sources": {}})
        group["runs"][run.seed] = run.records
        group["sources"][run.seed] = str(run.path)
    found: list[dict[str, Any]] = []
    for group in groups.values():
        identity, by_seed = group["identity"], group["runs"]
        scopes = [("seeds", identity["source"] or ";".join(group["sources"][s] for s in sorted(by_seed)), by_seed)]
        scopes += [("run", group["sources"][seed], {seed: by_seed[seed]}) for seed in sorted(by_seed)]
        for scope, source, chosen in scopes:
            measured = profile.profile(chosen, identity["task"], group["name"])
            for name in profile.DEFINITIONS:
                field = measured.fields[name].as_dict()
                found.append({**identity, "source": source, "scope": scope,
                              "seeds": ",".join(str(s) for s in sorted(chosen)), "definition": name,
                              **{k: field[k] for k in PROFILE_COLUMNS[10:]}})
    return found


def _display(strategy: StrategySection) -> str:
    return strategy_display(strategy.name, strategy.params)


def _summaries(runs: Sequence[Run]) -> tuple[list[Group], list[dict[str, Any]]]:
    groups = group_runs(runs)
    return groups, summary_rows(groups)


def scores_frame(paths: Sequence[Path | str], runs: Sequence[Run] | None = None) -> pandas.DataFrame:
    """:func:`score_rows` of the runs in ``paths`` (or the ``runs`` already read from them) as a
    DataFrame, by task then strategy."""
    import pandas

    table = pandas.DataFrame(score_rows(runs_of(paths) if runs is None else runs), columns=list(SCORE_COLUMNS))
    if table.empty:
        raise ResultFileError(f"no runs in {', '.join(map(str, paths))}")
    return table.sort_values(["task", "strategy", "entry"], kind="stable", na_position="first").reset_index(drop=True)


def frame(paths: Sequence[Path | str], runs: Sequence[Run] | None = None) -> pandas.DataFrame:
    """:func:`rows` (of ``runs`` when they are already read from ``paths``) as a DataFrame: identity
    columns first, then metrics, composition, compute, seconds."""
    import pandas

    table = pandas.DataFrame(_rows(runs_of(paths) if runs is None else runs))
    if table.empty:
        raise ResultFileError(f"no generation records in {', '.join(map(str, paths))}")
    rest = sorted((c for c in table.columns if c not in IDENTITY_COLUMNS and c != "fit_options"), key=_column_order)
    table = table[[*IDENTITY_COLUMNS, *rest, "fit_options"]]
    for column in table.columns:
        counts = column.startswith(("composition.", "compute.")) and column != "composition.weighted"
        if counts or column in ("seed", "generation"):
            table[column] = table[column].astype("Int64")
    table = table.sort_values(["task", "strategy", "params", "seed", "generation", "source"], kind="stable")
    return table.reset_index(drop=True)


GROUPS = ("metrics", "composition", "compute", "seconds")


def _column_order(column: str) -> tuple[Any, ...]:
    """Groups in record order; ``metrics.loss`` first, composition fields in record order
    (``composition.synthetic.10`` after ``.9``), the rest alphabetical."""
    group, _, key = column.partition(".")
    if group == "metrics":
        return (0, key != "loss", key)
    if group == "composition":
        field, _, origin = key.partition(".")
        return (1, COMPOSITION_FIELDS.index(field) if field in COMPOSITION_FIELDS else len(COMPOSITION_FIELDS),
                int(origin) if origin.isdigit() else -1, key)
    return (GROUPS.index(group) if group in GROUPS else len(GROUPS), key)


def write(table: pandas.DataFrame, out: Path, fmt: str) -> None:
    """Write ``table`` to ``out`` as ``csv``, ``parquet`` or ``json`` (atomically, with the user's umask).

    JSON is a list of rows, one object per row with every column (a missing value is ``null``);
    floats are written by Python's ``json`` (shortest repr), so they read back bit for bit."""
    if fmt == "csv":
        atomic_write_text(Path(out), table.to_csv(index=False))
    elif fmt == "json":
        rows = table.astype(object).where(table.notna(), None).to_dict(orient="records")
        atomic_write_text(Path(out), json.dumps(rows, indent=1, allow_nan=False, ensure_ascii=False) + "\n")
    elif fmt == "parquet":
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False, engine="pyarrow")
        atomic_write_bytes(Path(out), buffer.getvalue())
    else:
        raise ParameterError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


def profile_frame(paths: Sequence[Path | str], runs: Sequence[Run] | None = None) -> pandas.DataFrame:
    """:func:`profile_rows` of the runs in ``paths`` (or the ``runs`` already read from them) as a
    DataFrame in :data:`PROFILE_COLUMNS` order."""
    import pandas

    found = profile_rows(runs_of(paths) if runs is None else runs)
    if not found:
        raise ResultFileError(f"no generation records in {', '.join(map(str, paths))}")
    return pandas.DataFrame(found, columns=list(PROFILE_COLUMNS))


def export(paths: Sequence[Path | str], out: Path, fmt: str, scores: bool = False,
           collapse_profile: bool = False) -> pandas.DataFrame:
    """Read ``paths`` (see :func:`rows`), write the table to ``out`` and return it: one row per
    generation, or with ``scores`` :func:`scores_frame`'s, or with ``collapse_profile`` the profile's
    (:func:`profile_rows`)."""
    if fmt not in FORMATS:
        raise ParameterError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if scores and collapse_profile:
        raise ParameterError("choose one of --scores and --profile")
    runs = runs_of(paths)
    refuse_overwriting_inputs(Path(out), sorted({str(run.path) for run in runs}))
    table = (scores_frame(paths, runs) if scores else profile_frame(paths, runs) if collapse_profile
             else frame(paths, runs))
    write(table, out, fmt)
    return table


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


def refuse_overwriting_inputs(out: Path, sources: Sequence[str]) -> None:
    """:class:`ParameterError` if ``out`` is one of the files the table was read from (a submission
    file, or a file of a run directory read)."""
    for source in map(Path, sources):
        inputs = [source / MANIFEST, source / GENERATIONS] if source.is_dir() else [source]
        if any(_same_file(out, given) for given in inputs):
            raise ParameterError(f"--out {out} is one of the files being exported ({source}); choose another path")
