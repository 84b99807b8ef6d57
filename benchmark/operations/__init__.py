"""Operations over many runs, one sub-package per job:

- :mod:`~collapselab.operations.execution`: the sweep, its jobs and workers, and the launchers that run them
  (local processes, submitit, Slurm);
- :mod:`~collapselab.operations.publishing`: a submission from runs (with its gallery), and its reproduction;
- :mod:`~collapselab.operations.results`: runs as tables (export) and the notebook API;
- :mod:`~collapselab.operations.plugins`: what a task or strategy is (catalog) and whether it keeps its
  contract (the contract suite behind ``collapselab check``).
"""
