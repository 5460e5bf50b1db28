"""`make gpu-check`: everything a lent GPU should show, as one command of at most 10 minutes.

One line per check, PASS / FAIL / SKIP with its number or reason, and results/gpu-check/gpu-check.json.
Without CUDA every check skips (a test runs it so on CPU); the two-GPU checks skip on one GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from . import bench, engine, train
from .augment import IMAGENET_EIGVAL, IMAGENET_EIGVEC, Normalize, TrainTransform, channels_last
from .data import ImageSet
from .loaders import TensorLoader, default_workers
from .model import AlexNet
from .results import REPO, results_root, run_record
from .towers import towers_from_grouped

SMOKE = ["--profile", "smoke", "--train-size", "64", "--test-size", "32", "--batch-size", "16",
         "--width", "0.25", "--fc-size", "64"]


class Skip(Exception):
    """A check that cannot run on this machine; the message says why."""


def gpus(needed: int) -> torch.device:
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if available < needed:
        raise Skip(f"needs {needed} GPU(s), this machine has {available}")
    return torch.device("cuda", 0)


def speed_settings():
    """cuDNN as the CLI runs it (one input size: benchmark its kernels), only for the check."""
    return torch.backends.cudnn.flags(enabled=True, benchmark=True)


def run_command(args: list[str], timeout: int, **env: str) -> None:
    """A subprocess from the repository root; a failure ends the check with the end of its stderr."""
    done = subprocess.run(args, cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (done.stderr or done.stdout)[-400:]


def unit_tests() -> str:
    gpus(1)
    done = subprocess.run([sys.executable, "-m", "pytest", "tests", "-q", "-rf", "-p", "no:cacheprovider"], cwd=REPO,
                          env={**os.environ, "ALEXNET_BOOK_DEVICE": "cuda"}, capture_output=True, text=True, timeout=300)
    lines = done.stdout.strip().splitlines() or done.stderr[-300:].splitlines()
    failed = [line.split(" - ")[0] for line in lines if line.startswith("FAILED")]
    assert done.returncode == 0, "; ".join([lines[-1], *failed[:5]])
    return lines[-1]


def train_resume_and_cpu_resume() -> str:
    gpus(1)
    with tempfile.TemporaryDirectory() as out:
        for device, epochs in (("cuda", 1), ("cuda", 2), ("cpu", 3)):  # train, resume on the GPU, then on the CPU
            assert train.main([*SMOKE, "--device", device, "--epochs", str(epochs), "--out", out]) == 0, device
        history = json.loads((Path(out) / "run.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    return "3 epochs: 1 trained on cuda, 1 resumed on cuda, 1 resumed on cpu"


def compiled_training() -> str:
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


def loader_against_model() -> str:
    device = gpus(1)
    workers = default_workers()
    with tempfile.TemporaryDirectory() as tmp:
        root = bench.write_jpeg_tree(Path(tmp), per_class=64)
        loader = bench.folder_loader(root, workers, device)
    with speed_settings():
        model, _ = bench.setting_speed("paper AlexNet", "bf16", True, False, device, 128, 10)
    return (f"ImageFolder loader {loader['img_per_s']:,.0f} img/s ({workers} workers) against the model's "
            f"{model:,.0f} img/s")


def jpeg_decoding() -> str:
    """GPU JPEG decoding (nvjpeg) against the CPU's, on ImageNet-sized files: whether decoding on the
    device could feed the model where CPU workers cannot."""
    device = gpus(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = bench.write_jpeg_tree(Path(tmp), per_class=64)
        on_gpu, on_cpu = bench.jpeg_decode_speed(root, device), bench.jpeg_decode_speed(root, torch.device("cpu"))
    return f"decode_jpeg {on_gpu:,.0f} img/s on the GPU against {on_cpu:,.0f} on one CPU thread (320x400, 64 per call)"


def cifar_epochs() -> str:
    """What the `<notebook>@cuda` budgets cost: a training epoch of all 50,000 CIFAR images, per section net."""
    device = gpus(1)
    with speed_settings():
        seconds = bench.cifar_epoch_seconds(device)
    return "50,000-image training epoch: " + ", ".join(f"{net} {s:.1f} s" for net, s in seconds.items())


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


CHECKS = [unit_tests, train_resume_and_cpu_resume, compiled_training, no_host_sync, ten_patch_memory,
          matmul_fraction, loader_against_model, jpeg_decoding, cifar_epochs, torchrun_cold_cache_and_fewer_gpus,
          ddp_compiled_training, two_towers_on_two_gpus]


def run_checks(checks=CHECKS) -> list[dict]:
    rows = []
    for check in checks:
        tic = time.perf_counter()
        try:
            status, detail = "pass", check()
        except Skip as reason:
            status, detail = "skip", str(reason)
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
    print(f"wrote {out / 'gpu-check.json'}")
    return int(any(row["status"] == "fail" for row in rows))


if __name__ == "__main__":
    sys.exit(main())
