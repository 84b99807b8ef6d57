"""The package list, found rather than written: pyproject.toml's ``package-dir`` maps one import
name, collapselab, over the four top-level folders fixed by the product brief, and setuptools' own
finder cannot prefix a folder's sub-packages with another name; this does, so a new sub-package
(a folder with an ``__init__.py``) is installed without an edit."""

import tomllib
from pathlib import Path

from setuptools import find_packages, setup

FOLDERS = tomllib.loads((Path(__file__).parent / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]

setup(packages=[f"{name}.{sub}" if sub else name for name, folder in FOLDERS.items() for sub in ("", *find_packages(folder))])
