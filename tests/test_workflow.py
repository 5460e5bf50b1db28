"""The GitHub Actions workflow runs what the README tells a reader to run, on pyproject's Python."""

from __future__ import annotations

import re
import shlex
import tomllib

import yaml
from packaging.specifiers import SpecifierSet

from alexnet_book.results import REPO

README = (REPO / "README.md").read_text()
WORKFLOW = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
STEPS = [step for job in WORKFLOW["jobs"].values() for step in job["steps"]]


def make_targets(commands: str) -> set[str]:
    """The targets of every `make ...` line: words after make that are neither VAR=value nor -flags."""
    targets = set()
    for line in commands.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["make"]:
            targets |= {w for w in words[1:] if "=" not in w and not w.startswith("-")}
    return targets


def readme_two_commands() -> str:
    section = README.split("## The two commands", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def workflow_commands() -> str:
    return "\n".join(step["run"] for step in STEPS if "run" in step)


def uses(action: str) -> list[dict]:
    return [step.get("with", {}) for step in STEPS if step.get("uses", "").startswith(action + "@")]


def test_workflow_runs_the_readmes_two_commands():
    readme = make_targets(readme_two_commands())
    assert readme == {"reproduce", "test"}, "the README's two commands changed: update ci.yml and this test"
    assert readme <= make_targets(workflow_commands())


def test_every_workflow_target_is_a_documented_makefile_target():
    makefile_targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
    for target in make_targets(workflow_commands()):
        assert target in makefile_targets, f"ci.yml runs `make {target}`, which the Makefile lacks"
        assert f"make {target}" in README, f"ci.yml runs `make {target}`, which the README never mentions"


def test_every_job_uses_pyprojects_pythons_and_the_tests_run_on_each():
    requires = SpecifierSet(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"])
    pythons = uses("actions/setup-python")
    assert len(pythons) == len(WORKFLOW["jobs"])
    matrix = WORKFLOW["jobs"]["test"]["strategy"]["matrix"]["python"]
    assert matrix == ["3.11", "3.12", "3.13"]  # quoted: YAML reads 3.10 as 3.1
    assert all(f"{version}.0" in requires for version in matrix) and "3.14.0" not in requires
    for setup in pythons:
        version = setup["python-version"]
        assert version == "${{ matrix.python }}" or (version in matrix)


def test_caches_and_cancels_superseded_runs():
    assert WORKFLOW["concurrency"]["cancel-in-progress"] is True
    for setup in uses("actions/setup-python"):
        assert setup["cache"] == "pip"
        assert set(setup["cache-dependency-path"].split()) == {"pyproject.toml", "constraints.txt"}
    assert all(cache["path"] == "~/.cache/alexnet-book" for cache in uses("actions/cache"))
    assert len(uses("actions/cache")) == len(WORKFLOW["jobs"])


def test_smoke_results_are_uploaded():
    assert "make reproduce PROFILE=smoke" in workflow_commands()
    (upload,) = uses("actions/upload-artifact")
    assert "results/smoke/" in upload["path"].split()
