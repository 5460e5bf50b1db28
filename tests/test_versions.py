from __future__ import annotations

import re
import tomllib
import warnings
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from alexnet_book import versions
from alexnet_book.results import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def pyproject_ranges() -> dict[str, SpecifierSet]:
    project = PYPROJECT["project"]
    lines = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    return {Requirement(line).name: Requirement(line).specifier for line in lines}


def fake_versions(monkeypatch, **overrides: str | None) -> None:
    """Pretend these packages are installed at these versions (None: not installed)."""
    real = versions.installed_version
    monkeypatch.setattr(versions, "installed_version", lambda name: overrides[name] if name in overrides else real(name))


def test_ranges_come_from_pyproject():
    """The installed metadata carries pyproject's ranges: one source of truth (stale means `make install`)."""
    expected = pyproject_ranges()
    assert versions.supported_ranges() == {name: expected[name] for name in versions.CHECKED}


def test_installed_versions_in_range_give_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert versions.check_versions() == []


@pytest.mark.parametrize("name, version", [("torch", "2.3.1"), ("torchvision", "1.0.0"), ("papermill", "3.0"),
                                           ("nbval", "0.10.0")])
def test_out_of_range_version_warns_with_the_fix(monkeypatch, name, version):
    fake_versions(monkeypatch, **{name: version})
    with pytest.warns(UserWarning, match=rf"{name} {version} is outside the supported range") as caught:
        versions.check_versions()
    message = str(caught[0].message)
    assert "make install" in message and "pip install -c constraints.txt -e '.[dev]'" in message


def test_local_and_nightly_builds_inside_the_range_pass(monkeypatch):
    fake_versions(monkeypatch, torch="2.5.0+cpu", torchvision="0.20.0.dev20240901")
    assert versions.version_problems() == []


def test_missing_package_warns(monkeypatch):
    fake_versions(monkeypatch, nbval=None)
    with pytest.warns(UserWarning, match=r"nbval is not installed \(supported: "):
        versions.check_versions()


def test_uninstalled_book_says_so(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(versions.metadata, "requires", not_installed)
    assert "alexnet-book itself is not installed" in versions.version_problems()[0]


def test_notebook_setup_checks_versions(monkeypatch):
    from alexnet_book import runtime

    fake_versions(monkeypatch, torch="1.13.0")
    with pytest.warns(UserWarning, match="torch 1.13.0 is outside"):
        runtime.setup("00_setup", "smoke", "cpu")


def test_training_cli_checks_versions_first(monkeypatch):
    from alexnet_book import train

    fake_versions(monkeypatch, papermill="2.0")

    def stop(device):
        raise SystemExit("stopped after the check")

    monkeypatch.setattr(train.distributed, "start", stop)
    with pytest.warns(UserWarning, match="papermill 2.0 is outside"), pytest.raises(SystemExit, match="stopped"):
        train.main(["--profile", "smoke", "--device", "cpu"])


def test_requires_python_takes_3_11_to_3_13_as_the_makefile_does():
    """pip refuses 3.10 and 3.14 with a clear message because of requires-python; the Makefile chooses the
    Python that creates .venv by the same range."""
    supported = SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert "3.11.0" in supported and "3.12.3" in supported and "3.13.9" in supported
    assert "3.10.14" not in supported and "3.14.0" not in supported
    low, high = re.search(r"not \(3, (\d+)\) <= sys.version_info\[:2\] <= \(3, (\d+)\)",
                          (REPO / "Makefile").read_text()).groups()
    for minor in range(8, 16):
        assert (int(low) <= minor <= int(high)) == (f"3.{minor}.0" in supported), minor
