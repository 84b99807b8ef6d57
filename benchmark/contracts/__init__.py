"""The plugin contracts: what a task or strategy author reads (Pool, Task, Strategy, errors, registry)."""
