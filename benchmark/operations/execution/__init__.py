"""Running jobs: the sweep (a grid of runs), one job per run, the worker process that runs it,
and the launchers (local, submitit, Slurm)."""
