"""The installed versions of the libraries the book leans on, against the ranges it supports.

The ranges live once, in pyproject.toml; the installed package's metadata carries them
(importlib.metadata), so an installed book checks itself without reading pyproject. Called by
`runtime.setup` (the first cell of every notebook) and by the training CLI.
"""

from __future__ import annotations

import warnings
from importlib import metadata

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

PACKAGE = "alexnet-book"
CHECKED = ("torch", "torchvision", "papermill", "nbval")
FIX = "run `make install`, or `pip install -c constraints.txt -e '.[dev]'` in the repository"


def supported_ranges(names: tuple[str, ...] = CHECKED) -> dict[str, SpecifierSet]:
    """The version range pyproject.toml gives each of `names` (dev extras included)."""
    ranges = {}
    for line in metadata.requires(PACKAGE) or []:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) in names:
            ranges[canonicalize_name(requirement.name)] = requirement.specifier
    return ranges


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def version_problems(names: tuple[str, ...] = CHECKED) -> list[str]:
    """One line per package that is missing or outside its supported range; empty when all fit."""
    try:
        ranges = supported_ranges(names)
    except metadata.PackageNotFoundError:  # imported from a checkout that was never installed
        return [f"{PACKAGE} itself is not installed, so its supported versions are unknown"]
    problems = []
    for name, supported in ranges.items():
        version = installed_version(name)
        if version is None:
            problems.append(f"{name} is not installed (supported: {supported})")
        elif not supported.contains(version, prereleases=True):  # a nightly inside the range is fine
            problems.append(f"{name} {version} is outside the supported range {supported}")
    return problems


def check_versions(names: tuple[str, ...] = CHECKED) -> list[str]:
    """Warn, naming the fix, when a checked package is missing or out of range; returns the problems."""
    problems = version_problems(names)
    if problems:
        warnings.warn(f"alexnet-book: {'; '.join(problems)}. To get the verified versions, {FIX}.", stacklevel=2)
    return problems
