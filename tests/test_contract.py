"""The contract suite (:mod:`collapselab.operations.plugins.contract_suite`, what ``collapselab check`` runs)
on every registered task with every applicable shipped baseline, at the smoke preset.

A new task or baseline is covered as soon as it is registered (entry points), without editing
this file: completion, identical resume after an interruption, fits that spend exactly the step
budget, save/load round trips, deterministic evaluation, a validation loss read without the test
split, the fresh-real reserve, and clear refusals where a baseline cannot run.
"""

from __future__ import annotations

import pytest

from collapselab.contracts import registry
from collapselab.leaderboard.baselines import shipped
from collapselab.operations.plugins import contract_suite

TASKS = registry.task_names()
BASELINES = shipped()


def _passes(check, *args) -> None:
    """Run a check of the suite; one that does not apply is a skip."""
    try:
        check(*args)
    except contract_suite.NotApplicable as reason:
        pytest.skip(f"not applicable: {reason}")


class _TaskContract:
    """The suite on one task: a class per registered task (below), so that the parallel suite
    (``--dist loadscope``: a class is one unit of work) runs the tasks side by side. The baselines'
    runs on a task share one folder, as in ``collapselab check``, and so its generation 0."""

    task_name: str

    @pytest.fixture(scope="class")
    @classmethod
    def workdir(cls, tmp_path_factory):
        return tmp_path_factory.mktemp(f"contract-{cls.task_name}")

    @pytest.mark.parametrize("strategy", BASELINES)
    def test_every_baseline_completes_and_resumes_identically(self, strategy, workdir):
        _passes(contract_suite.completes_and_resumes, self.task_name, strategy, workdir)

    @pytest.mark.parametrize("check", contract_suite.TASK_CHECKS.values(), ids=[c.__name__ for c in contract_suite.TASK_CHECKS.values()])
    def test_the_task_keeps_its_contract(self, check):
        _passes(check, self.task_name)


for _task in TASKS:
    globals()[f"TestOn_{_task}"] = type(f"TestOn_{_task}", (_TaskContract,), {"task_name": _task})
