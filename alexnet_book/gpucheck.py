"""`make gpu-check`: everything a lent GPU should show, as one command of at most 10 minutes.

One line per check, PASS / FAIL / SKIP with its number or reason, and results/gpu-check/gpu-check.json.
It runs on a GPU image as it comes (`make gpu-check PY=python3` installs nothing): a check whose optional
package is missing skips and names it. The first check fails when nvidia-smi lists a GPU that torch cannot
use; on a machine with no GPU at all every check skips and the run exits 0 (a test runs it so on CPU). The
two-GPU checks skip on one GPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import torch

from . import bench, engine, experiment, train
from .augment import IMAGENET_EIGVAL, IMAGENET_EIGVEC, Normalize, TrainTransform, channels_last
from .backend import amp_dtype
from .data import ImageSet
from .loaders import TensorLoader, default_workers
from .model import AlexNet
from .results import REPO, results_root, run_record
from .timing import time_call
from .towers import towers_from_grouped

SMOKE = ["--profile", "smoke", "--train-size", "64", "--val-size", "32", "--test-size", "32", "--batch-size", "16",
         "--width", "0.25", "--fc-size", "64"]


class Skip(Exception):
    """A check that cannot run on this machine; the message says why."""


def gpus(needed: int) -> torch.device:
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if available < needed:
        raise Skip(f"needs {needed} GPU(s), this machine has {available}")
    return torch.device("cuda", 0)


def needs(*modules: str) -> None:
    """Skip the check, naming what is missing, when this Python cannot import its packages (checked up front
    for what a subprocess imports; an import inside the check that fails skips it too, in run_checks)."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise Skip(f"needs {', '.join(missing)}, not installed for {sys.executable} "
                   "(README, GPU check: on a GPU image as it comes)")


def listed_gpus() -> list[str]:
    """The GPUs the driver lists (`nvidia-smi -L`), whatever torch makes of them; none without a driver."""
    if shutil.which("nvidia-smi") is None:
        return []
    done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
    return [line for line in done.stdout.splitlines() if line.startswith("GPU ")]


def speed_settings():
    """cuDNN as the CLI runs it (one input size: benchmark its kernels), only for the check."""
    return torch.backends.cudnn.flags(enabled=True, benchmark=True)


def run_command(args: list[str], timeout: int, **env: str) -> None:
    """A subprocess from the repository root; a failure ends the check with the end of its stderr."""
    done = subprocess.run(args, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (done.stderr or done.stdout)[-400:]


def torch_sees_the_gpus() -> str:
    """A GPU that the driver lists but torch cannot use (a CPU-only wheel, a driver older than torch's CUDA)
    fails here; otherwise every other check would skip and the run would exit 0 as on a machine without one."""
    listed = listed_gpus()
    if not torch.cuda.is_available():
        assert not listed, (f"nvidia-smi lists {len(listed)} GPU(s) ({listed[0]}) but torch.cuda.is_available() is "
                            f"False: torch {torch.__version__}, built for CUDA {torch.version.cuda}")
        raise Skip("no GPU on this machine (nvidia-smi lists none), so every check skips")
    return (f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees {torch.cuda.device_count()} GPU(s), "
            f"{torch.cuda.get_device_name(0)}; nvidia-smi lists {len(listed)}")


# What the test suite imports beyond what `import alexnet_book` needs (torch, torchvision, numpy, pandas, tqdm,
# packaging: without one of those this module cannot start). ipykernel: the kernel papermill starts in
# test_reproduce; nbval: test_versions wants it installed. A test keeps this list in step with tests/.
UNIT_TEST_PACKAGES = ("pytest", "nbformat", "nbconvert", "papermill", "nbval", "ipykernel", "yaml", "matplotlib",
                      "scipy")


def unit_tests() -> str:
    needs(*UNIT_TEST_PACKAGES)
    gpus(1)
    args, note, env = [], "", {**os.environ, "ALEXNET_BOOK_DEVICE": "cuda"}
    try:
        metadata.requires("alexnet-book")
    except metadata.PackageNotFoundError:  # run from a checkout, as on a bare GPU image: no metadata to read
        args = ["--ignore", "tests/test_versions.py"]
        note = " (tests/test_versions.py not run: alexnet-book is not installed)"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))  # for notebook kernels
    # Wheels installed with `pip install --target DIR` (README) put nbconvert's templates under DIR/share/jupyter,
    # where Jupyter looks only when told.
    templates = Path(importlib.util.find_spec("nbconvert").origin).parents[1] / "share" / "jupyter"
    if templates.is_dir():
        env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(templates), env.get("JUPYTER_PATH")]))
    done = subprocess.run([sys.executable, "-m", "pytest", "tests", "-q", "-rf", "-p", "no:cacheprovider", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    lines = done.stdout.strip().splitlines() or done.stderr[-300:].splitlines()
    failed = [line.split(" - ")[0] for line in lines if line.startswith("FAILED")]
    assert done.returncode == 0, "; ".join([lines[-1], *failed[:5]])
    return lines[-1] + note


def train_resume_and_cpu_resume() -> str:
    gpus(1)
    with tempfile.TemporaryDirectory() as out:
        for device, epochs in (("cuda", 1), ("cuda", 2), ("cpu", 3)):  # train, resume on the GPU, then on the CPU
            assert train.main([*SMOKE, "--device", device, "--epochs", str(epochs), "--out", out]) == 0, device
        history = json.loads((Path(out) / "run.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    return "3 epochs: 1 trained on cuda, 1 resumed on cuda, 1 resumed on cpu"


def compiled_training() -> str:
    needs("triton")  # torch.compile's GPU code generator
    gpus(1)
    with tempfile.TemporaryDirectory() as out:
        assert train.main([*SMOKE, "--device", "cuda", "--epochs", "1", "--compile", "--out", out]) == 0
    return "torch.compile: one epoch with LRN's autograd Function"


def no_host_sync(steps: int = 20) -> str:
    """train_epoch syncs only at its NaN checks (every 50 steps) and at its ends: steps 2..`steps`, with
    the CLI's augmentation on the device, run under set_sync_debug_mode("error"), which raises at a sync."""
    device = gpus(1)
    model = AlexNet(10, width=0.25, fc_size=256).to(device, memory_format=torch.channels_last)
    n = steps * 32
    images = ImageSet(torch.randint(0, 256, (n, 3, 256, 256), dtype=torch.uint8), torch.randint(10, (n,)), ())
    augment = TrainTransform(Normalize(torch.full((3,), 120.0), torch.full((3,), 60.0)), crop=224,
                             lighting=(IMAGENET_EIGVAL, IMAGENET_EIGVEC))
    loader = TensorLoader(images, 32, shuffle=True, device=device, transform=channels_last(augment), drop_last=True)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    calls = 0

    def stop() -> bool:  # asked after every step: strict from the first step's end to the last step's
        nonlocal calls
        calls += 1
        torch.cuda.set_sync_debug_mode("error" if calls < steps else "default")
        return calls == steps

    try:
        engine.train_epoch(model, loader, optimizer, 0, amp_dtype=torch.bfloat16, progress=False, stop=stop)
    except engine.Interrupted:
        pass
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return f"no host sync in steps 2-{steps} (crops, flips, lighting, bf16 step)"


def ten_patch_memory() -> str:
    device = gpus(1)
    model = AlexNet(1000).to(device, memory_format=torch.channels_last)
    images = ImageSet(torch.randint(0, 256, (128, 3, 256, 256), dtype=torch.uint8), torch.randint(1000, (128,)), ())
    torch.cuda.reset_peak_memory_stats(device)
    loader = TensorLoader(images, 64, device=device, transform=lambda x, g: x.float())  # the CLI's --eval-batch-size
    engine.evaluate(model, loader, torch.bfloat16, ten_crop=224)
    return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB peak for 64 images x 10 patches at 224"


def matmul_fraction() -> str:
    device = gpus(1)
    limit = bench.matmul_gflops(device, torch.bfloat16)
    with speed_settings():
        img_per_s, error = bench.setting_speed("paper AlexNet", "bf16", True, False, device, 128, 20)
    assert error is None, error
    return (f"matmul limit {limit:,.0f} GFLOP/s; paper AlexNet bf16 + channels_last {img_per_s:,.0f} img/s = "
            f"{img_per_s * bench.GFLOP_PER_IMAGE / limit:.2f} of it")


def loader_against_model(batch_size: int = 16) -> str:
    """FolderLoader keeps 4 batches per worker in flight, all started before the first (untimed) batch
    arrives: a tree of 16 batches against 32 in flight timed the queue, not the decoding. A tree of 4x the
    batches in flight leaves the first wave (one batch per worker, ready together) at most workers / batches
    of the count: 6% with 8 workers."""
    device = gpus(1)
    workers = default_workers()
    in_flight = 4 * workers  # FolderLoader's prefetch_factor
    batches = 4 * in_flight
    with tempfile.TemporaryDirectory() as tmp:
        root = bench.write_jpeg_tree(Path(tmp), classes=4, per_class=batches * batch_size // 4)
        loader = bench.folder_loader(root, workers, device, batch_size)
    with speed_settings():
        model, error = bench.setting_speed("paper AlexNet", "bf16", True, False, device, 128, 10)
    assert error is None, error
    return (f"ImageFolder loader {loader['img_per_s']:,.0f} img/s ({workers} workers; {batches} batches of "
            f"{batch_size}, {in_flight} in flight) against the model's {model:,.0f} img/s")


def jpeg_decoding() -> str:
    """GPU JPEG decoding (nvjpeg) against the CPU's, on ImageNet-sized files: whether decoding on the
    device could feed the model where CPU workers cannot."""
    device = gpus(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = bench.write_jpeg_tree(Path(tmp), per_class=64)
        on_gpu, on_cpu = bench.jpeg_decode_speed(root, device), bench.jpeg_decode_speed(root, torch.device("cpu"))
    return f"decode_jpeg {on_gpu:,.0f} img/s on the GPU against {on_cpu:,.0f} on one CPU thread (320x400, 64 per call)"


def evaluation_seconds(model: torch.nn.Module, device: torch.device, images: int, batch_size: int = 500) -> float:
    """Seconds of an evaluation pass fit runs after every epoch (engine.evaluate in the dtype training picks,
    batches of 500 as experiment.train_seeds makes them) over `images` 32x32 images already in memory."""
    g = torch.Generator().manual_seed(0)
    images = ImageSet(torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=g),
                      torch.randint(10, (images,), generator=g), ())
    loader = TensorLoader(images, batch_size, device=device, transform=channels_last(None))
    return time_call(lambda: engine.evaluate(model, loader, amp_dtype(device, "auto")), device, repeats=3)


def cifar_epochs(steps: int = 50, eval_images: int = 5_000 + experiment.TRAIN_EVAL_IMAGES) -> str:
    """What the `<notebook>@cuda` budgets cost: an epoch as the notebooks run it, training on all 45,000
    CIFAR images outside the validation set, then the evaluation passes (the 5,000 validation images and the
    eval-mode training subset), per section net; the test set is read once per run, not per epoch."""
    device = gpus(1)
    with speed_settings():
        training = bench.cifar_epoch_seconds(device, steps=steps, images=45_000)
        evaluating = {net: evaluation_seconds(make().to(device, memory_format=torch.channels_last), device, eval_images)
                      for net, make in bench.CIFAR_NETS.items()}
    return (f"45,000-image training epoch + {eval_images:,}-image evaluation passes: "
            + ", ".join(f"{net} {training[net]:.1f} + {evaluating[net]:.1f} s" for net in training))


def torchrun(nproc: int, args: list[str], **env: str) -> None:
    run_command([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
                 "-m", "alexnet_book.train", *args], timeout=240, **env)


def torchrun_cold_cache_and_fewer_gpus() -> str:
    """Two nccl processes on an ImageFolder tree with an empty cache (rank 0 writes the channel statistics,
    rank 1 reads them), then the run resumed by one process for a second epoch."""
    gpus(2)
    with tempfile.TemporaryDirectory() as tmp:
        tree = bench.write_jpeg_tree(Path(tmp, "data", "imagenet"), per_class=16)
        (tree / "val").symlink_to(tree / "train")
        cache, out = Path(tmp, "cache"), Path(tmp, "run")
        args = ["--profile", "imagenet", "--data-root", str(tree.parent), "--batch-size", "16", "--width", "0.25",
                "--fc-size", "64", "--workers", "2", "--out", str(out)]
        for nproc, epochs in ((2, 1), (1, 2)):  # two GPUs, then resumed on one
            torchrun(nproc, [*args, "--epochs", str(epochs)], ALEXNET_BOOK_CACHE=str(cache))
        written = sorted(path.name for path in cache.iterdir())
        epochs = len(json.loads((out / "run.json").read_text())["history"])
    assert len(written) == 1 and written[0].startswith("imagenet-stats-"), written  # one cache, no stray temp file
    assert epochs == 2, epochs
    return f"nccl on a cold cache with 2 processes ({written[0]}), resumed with 1"


def ddp_compiled_training() -> str:
    needs("triton")
    gpus(2)
    with tempfile.TemporaryDirectory() as out:
        torchrun(2, [*SMOKE, "--epochs", "1", "--compile", "--out", out])
    return "torch.compile of the DDP-wrapped model, 2 processes: one epoch"


def two_towers_on_two_gpus() -> str:
    """The towers on cuda:0 and cuda:1 against the grouped model on the CPU: outputs and conv1's gradient."""
    gpus(2)
    torch.manual_seed(0)
    model = AlexNet(10, fc_size=256, dropout=0.0)
    towers = towers_from_grouped(model, devices=("cuda:0", "cuda:1"))
    images, labels = torch.randn(4, 3, 224, 224), torch.tensor([0, 3, 5, 9])
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # fp32 on both sides, to compare closely
        outputs = towers(images)
        torch.nn.functional.cross_entropy(outputs, labels.to(outputs.device)).backward()
    expected = model(images)
    torch.nn.functional.cross_entropy(expected, labels).backward()
    difference = (outputs.detach().cpu() - expected.detach()).abs().max().item()
    grad = torch.cat([tower["conv1_2"].conv1.weight.grad.cpu() for tower in towers.towers])
    grad_difference = ((grad - model.features.conv1.weight.grad).abs().max() / grad.abs().max()).item()
    assert difference < 1e-4 and grad_difference < 1e-4, (difference, grad_difference)
    return f"largest difference from the grouped model: output {difference:.1e}, conv1 gradient {grad_difference:.1e} (relative)"


CHECKS = [torch_sees_the_gpus, unit_tests, train_resume_and_cpu_resume, compiled_training, no_host_sync,
          ten_patch_memory, matmul_fraction, loader_against_model, jpeg_decoding, cifar_epochs,
          torchrun_cold_cache_and_fewer_gpus, ddp_compiled_training, two_towers_on_two_gpus]


def run_checks(checks=CHECKS) -> list[dict]:
    rows = []
    for check in checks:
        tic = time.perf_counter()
        try:
            status, detail = "pass", check()
        except Skip as reason:
            status, detail = "skip", str(reason)
        except ModuleNotFoundError as missing:  # a package imported on the way (matplotlib for a figure, say)
            status, detail = "skip", f"needs {missing.name}, not installed for {sys.executable}"
        except Exception as failure:  # a failed check is a result, not the end of the run
            status, detail = "fail", f"{type(failure).__name__}: {str(failure)[:300]}"
        rows.append({"check": check.__name__, "status": status, "detail": detail,
                     "seconds": round(time.perf_counter() - tic, 1)})
        print(f"{status.upper():4s} {check.__name__}: {detail}", flush=True)
    return rows


def main() -> int:
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    rows = run_checks()
    out = results_root() / "gpu-check"
    out.mkdir(parents=True, exist_ok=True)
    record = {"run": run_record("gpu-check", device, [0]), "gpus": torch.cuda.device_count(), "checks": rows}
    (out / "gpu-check.json").write_text(json.dumps(record, indent=2) + "\n")
    counts = {status: sum(row["status"] == status for row in rows) for status in ("pass", "fail", "skip")}
    print(f"wrote {out / 'gpu-check.json'}: " + ", ".join(f"{n} {status}" for status, n in counts.items())
          + (" (nothing ran: no GPU here; exit status 0)" if counts["skip"] == len(rows) else ""))
    return int(counts["fail"] > 0)


if __name__ == "__main__":
    sys.exit(main())
