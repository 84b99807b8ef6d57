"""Plugins described and checked: the catalog of tasks and strategies, and the contract suite behind ``collapselab check``."""
