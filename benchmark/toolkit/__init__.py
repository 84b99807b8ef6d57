"""Helpers for task authors: PyTorch Lightning training under a step budget, devices, the content-keyed cache,
and the train / validation / reserve / test split helper."""
