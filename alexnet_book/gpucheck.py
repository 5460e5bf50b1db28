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
import warnings
from pathlib import Path

import torch

from . import bench, engine, train
from .augment import channels_last
from .data import ImageSet
from .loaders import TensorLoader
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


def unit_tests() -> str:
    gpus(1)
    done = subprocess.run([sys.executable, "-m", "pytest", "tests", "-q", "-x", "-p", "no:cacheprovider"], cwd=REPO,
                          env={**os.environ, "ALEXNET_BOOK_DEVICE": "cuda"}, capture_output=True, text=True, timeout=300)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    assert done.returncode == 0, summary
    return summary


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


def no_host_sync() -> str:
    """train_epoch syncs only at its NaN checks (every 50 steps) and its end: count the syncs of 20 steps."""
    device = gpus(1)
    model = AlexNet(10, width=0.25, fc_size=256).to(device, memory_format=torch.channels_last)
    images = ImageSet(torch.randint(0, 256, (20 * 32, 3, 224, 224), dtype=torch.uint8), torch.randint(10, (20 * 32,)), ())
    loader = TensorLoader(images, 32, shuffle=True, device=device, transform=channels_last(None))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            engine.train_epoch(model, loader, optimizer, 0, amp_dtype=torch.bfloat16, progress=False)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    assert syncs <= 5, f"{syncs} host syncs in 20 steps"
    return f"{syncs} host syncs in 20 steps (the epoch's end)"


def ten_patch_memory() -> str:
    device = gpus(1)
    model = AlexNet(1000).to(device, memory_format=torch.channels_last)
    images = ImageSet(torch.randint(0, 256, (128, 3, 256, 256), dtype=torch.uint8), torch.randint(1000, (128,)), ())
    torch.cuda.reset_peak_memory_stats(device)
    loader = TensorLoader(images, 64, device=device, transform=lambda x, g: x.float())
    engine.evaluate(model, loader, torch.bfloat16, ten_crop=224)
    return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB peak for 64 images x 10 patches at 224"


def matmul_fraction() -> str:
    device = gpus(1)
    limit = bench.matmul_gflops(device, torch.bfloat16)
    img_per_s, error = bench.setting_speed("paper AlexNet", "bf16", True, False, device, 128, 20)
    assert error is None, error
    return (f"matmul limit {limit:,.0f} GFLOP/s; paper AlexNet bf16 + channels_last {img_per_s:,.0f} img/s = "
            f"{img_per_s * bench.GFLOP_PER_IMAGE / limit:.2f} of it")


def loader_against_model() -> str:
    device = gpus(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = bench.write_jpeg_tree(Path(tmp), per_class=64)
        loader = bench.folder_loader(root, min(8, os.cpu_count() or 1), device)
    model, _ = bench.setting_speed("paper AlexNet", "bf16", True, False, device, 128, 10)
    return f"ImageFolder loader {loader['img_per_s']:,.0f} img/s against the model's {model:,.0f} img/s"


def torchrun_cold_cache_and_fewer_gpus() -> str:
    gpus(2)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "ALEXNET_BOOK_CACHE": str(Path(tmp) / "cache")}  # cold: both ranks start with no cache
        out = str(Path(tmp) / "run")
        for nproc, epochs in ((2, 1), (1, 2)):  # two GPUs, then resumed on one
            done = subprocess.run([sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
                                   "-m", "alexnet_book.train", *SMOKE, "--epochs", str(epochs), "--out", out],
                                  env=env, capture_output=True, text=True, timeout=240)
            assert done.returncode == 0, done.stderr[-300:]
    return "nccl on a cold cache with 2 processes, resumed with 1"


def two_towers_on_two_gpus() -> str:
    gpus(2)
    model = AlexNet(10, fc_size=256).eval()
    towers = towers_from_grouped(model, devices=("cuda:0", "cuda:1"))
    images = torch.randn(4, 3, 224, 224)
    with torch.no_grad():
        difference = (towers(images).cpu() - model(images)).abs().max().item()
    assert difference < 1e-2, difference  # TF32 convolutions on the GPUs against fp32 on the CPU
    return f"largest difference from the grouped model {difference:.1e}"


CHECKS = [unit_tests, train_resume_and_cpu_resume, compiled_training, no_host_sync, ten_patch_memory,
          matmul_fraction, loader_against_model, torchrun_cold_cache_and_fewer_gpus, two_towers_on_two_gpus]


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
