"""Helpers for task authors: PyTorch Lightning training under a step budget, devices, the content-keyed cache."""
