"""make gpu-check where no GPU is usable: on a CPU machine every check skips and the run exits 0; a GPU that
nvidia-smi lists but torch cannot see fails it; a missing optional package skips only the checks that need it.
Every test here hides any real GPU, so it runs the same on a GPU machine."""

import ast
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from importlib import metadata
from importlib.machinery import ModuleSpec

import torch

from alexnet_book import bench, gpucheck
from alexnet_book.results import REPO

H100 = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-0000-0000-0000-000000000000)"


def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def fake_nvidia_smi(tmp_path, monkeypatch, listing: str) -> None:
    """An `nvidia-smi` first on PATH that prints `listing` for -L, as the driver's does."""
    (tmp_path / "bin").mkdir()
    script = tmp_path / "bin" / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{listing}'\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")


def test_gpu_check_skips_every_check_without_a_gpu(tmp_path, monkeypatch, capsys):
    no_cuda(monkeypatch)
    fake_nvidia_smi(tmp_path, monkeypatch, "No devices were found")
    assert gpucheck.main() == 0
    record = json.loads((tmp_path / "results" / "gpu-check" / "gpu-check.json").read_text())
    assert [row["check"] for row in record["checks"]] == [check.__name__ for check in gpucheck.CHECKS]
    assert {row["status"] for row in record["checks"]} == {"skip"}
    out = capsys.readouterr().out
    assert "SKIP torch_sees_the_gpus: no GPU on this machine (nvidia-smi lists none)" in out
    assert "SKIP two_towers_on_two_gpus: needs 2 GPU(s), this machine has 0" in out
    assert "0 pass, 0 fail, 13 skip (nothing ran: no GPU here; exit status 0)" in out


def test_a_gpu_that_torch_cannot_see_fails_the_run(tmp_path, monkeypatch, capsys):
    """A CPU-only torch on a GPU machine must not pass for a machine without a GPU."""
    no_cuda(monkeypatch)
    fake_nvidia_smi(tmp_path, monkeypatch, H100)
    assert gpucheck.listed_gpus() == [H100]
    assert gpucheck.main() == 1
    failed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL")]
    assert failed == [f"FAIL torch_sees_the_gpus: AssertionError: nvidia-smi lists 1 GPU(s) ({H100}) but "
                      f"torch.cuda.is_available() is False: torch {torch.__version__}, "
                      f"built for CUDA {torch.version.cuda}"]


def test_runs_without_nbformat_papermill_and_matplotlib(tmp_path):
    """A fresh Python in which nbformat, papermill and matplotlib cannot be imported (as on a GPU image as it
    comes): the unit tests skip, naming them, every other check still reports, the json is written (its
    matplotlib version None) and the run exits 0."""
    code = ("import sys; sys.modules['nbformat'] = sys.modules['papermill'] = sys.modules['matplotlib'] = None\n"
            "import torch; torch.cuda.is_available = lambda: False\n"
            "from alexnet_book import gpucheck; gpucheck.listed_gpus = lambda: []\n"
            "import nbformat\n")
    blocked = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert "ModuleNotFoundError" in blocked.stderr or "ImportError" in blocked.stderr  # really not importable
    run = code.replace("import nbformat\n", "sys.exit(gpucheck.main())")
    done = subprocess.run([sys.executable, "-c", run], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "results" / "gpu-check" / "gpu-check.json").read_text())
    rows = {row["check"]: row for row in record["checks"]}
    assert list(rows) == [check.__name__ for check in gpucheck.CHECKS]
    assert rows["unit_tests"]["status"] == "skip"
    assert rows["unit_tests"]["detail"].startswith("needs nbformat, papermill, matplotlib, not installed for ")
    assert f"SKIP unit_tests: needs nbformat, papermill, matplotlib, not installed for {sys.executable}" in done.stdout
    assert record["run"]["versions"]["matplotlib"] is None


def test_unit_tests_from_a_checkout_with_wheels_installed_by_target(tmp_path, monkeypatch):
    """On a GPU image as it comes: alexnet-book is not installed (test_versions.py, which reads its metadata,
    is left out; the checkout goes on PYTHONPATH for the notebooks' kernels) and nbconvert comes from
    `pip install --target DIR` (its templates in DIR/share/jupyter go on JUPYTER_PATH)."""
    monkeypatch.setattr(gpucheck, "gpus", lambda needed: torch.device("cpu"))

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "requires", not_installed)
    site = tmp_path / "site"
    (site / "share" / "jupyter").mkdir(parents=True)
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: ModuleSpec(name, None, origin=str(
        site / "nbconvert" / "__init__.py")) if name == "nbconvert" else find_spec(name))
    calls = []

    def run(args, cwd, env, **kw):
        calls.append((args, env))
        return subprocess.CompletedProcess(args, 0, "5 passed in 1.00s\n", "")

    monkeypatch.setattr(subprocess, "run", run)
    assert gpucheck.unit_tests() == "5 passed in 1.00s (tests/test_versions.py not run: alexnet-book is not installed)"
    (args, env), = calls
    assert args[-2:] == ["--ignore", "tests/test_versions.py"] and env["ALEXNET_BOOK_DEVICE"] == "cuda"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(REPO)
    assert env["JUPYTER_PATH"].split(os.pathsep)[0] == str(site / "share" / "jupyter")


def test_the_loader_outlasts_its_queue_and_the_cifar_epoch_includes_the_test_pass(monkeypatch):
    """The benches time the model through bench.model_throughput (whose noise is normalized, so no step can
    diverge); the loader's tree holds 4x the batches in flight; the CIFAR epoch includes the test pass (run
    here for real, on 8 images)."""
    monkeypatch.setattr(gpucheck, "gpus", lambda needed: torch.device("cpu"))
    monkeypatch.setattr(bench, "matmul_gflops", lambda device, dtype: 1e3)
    timed, trees = [], []

    def model_throughput(model, *args, **kw):
        timed.append(type(model).__name__)
        return {"img_per_s": 1000.0}

    def write_jpeg_tree(root, classes, per_class):
        trees.append(classes * per_class)
        return root

    monkeypatch.setattr(bench, "model_throughput", model_throughput)
    monkeypatch.setattr(bench, "write_jpeg_tree", write_jpeg_tree)
    monkeypatch.setattr(bench, "folder_loader", lambda root, workers, device, batch_size: {"img_per_s": 500.0})
    monkeypatch.setattr(gpucheck, "default_workers", lambda: 8)
    assert gpucheck.matmul_fraction().endswith("1,000 img/s = 4.34 of it")
    assert "128 batches of 16, 32 in flight" in gpucheck.loader_against_model()
    assert trees == [128 * 16]
    line = gpucheck.cifar_epochs(eval_images=8)
    assert line.startswith("45,000-image training epoch + 8-image evaluation passes: layers-80sec (02) 45.0 + ")
    assert line.count(" 45.0 + ") == len(bench.CIFAR_NETS)  # training (1,000 img/s) + the evaluations, per net
    assert timed == ["AlexNet", "AlexNet", "Layers80Sec", "ConvLocal", "CifarAlexNet", "CifarAlexNet"]


def test_unit_test_packages_cover_what_the_tests_import():
    """unit_tests skips, naming them, without the packages the test suite imports beyond those the book
    itself cannot start without; a new import in tests/ must be added to UNIT_TEST_PACKAGES."""
    imported = set()
    for path in (REPO / "tests").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    book = {"alexnet_book", "torch", "torchvision", "numpy", "pandas", "tqdm", "packaging", "PIL", "conftest"}
    assert imported - set(sys.stdlib_module_names) - book <= set(gpucheck.UNIT_TEST_PACKAGES)


def test_a_check_that_meets_a_missing_package_skips_naming_it(capsys):
    def plots_its_result():
        importlib.import_module("a_plotting_package_not_installed")

    rows = gpucheck.run_checks([plots_its_result])
    assert rows[0]["status"] == "skip"
    assert rows[0]["detail"] == f"needs a_plotting_package_not_installed, not installed for {sys.executable}"


def test_a_failing_check_is_reported_not_raised(capsys):
    def broken():
        raise AssertionError("12 host syncs")

    rows = gpucheck.run_checks([broken])
    assert rows[0]["status"] == "fail" and "12 host syncs" in rows[0]["detail"]
    assert capsys.readouterr().out.startswith("FAIL broken: AssertionError: 12 host syncs")
