"""`make bench`: how fast the book turns compute into results, against the hardware and the usual way.

One run measures, on the device at hand:
- the paper's AlexNet training img/s in fp32, bf16 autocast, channels_last and torch.compile, each
  as a fraction of the matmul limit measured in the same run (peak GFLOP/s of a large matmul in
  that dtype / 4.35 GFLOP per training image), with torchvision's alexnet beside it, and on CPU
  the fastest setting once more without huge-page allocations;
- the CIFAR data path (cached uint8 tensor, crops and flips as tensor ops) against
  torchvision's ImageFolder with PIL transforms through a DataLoader, on the same JPEG files;
- the ImageFolder loader (JPEG decode in workers), img/s per worker, on a generated tree;
- LRN, ours against torch.nn.LocalResponseNorm, forward and backward;
- the wall time of `make test`, with --make-test.
Notebook times are not copied here: each `make reproduce` writes its own (results/<profile>/reproduce.json,
shown by notebook 00 and the README). It writes results/bench/bench.json and bench.md. These are
benchmarks, not tests: nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import torchvision

from . import data
from .augment import Normalize, TrainTransform
from .cifar_nets import CifarAlexNet, ConvLocal, Layers80Sec
from .loaders import FolderLoader, TensorLoader
from .lrn import LRN, unfused_lrn
from .model import AlexNet
from .profiles import get_profile
from .results import huge_page_allocations, results_root, run_record
from .backend import amp_dtype, bf16_is_fast, dtype_name, pick_device, seed_everything
from .timing import loader_throughput, model_throughput, sync, time_call


GFLOP_PER_IMAGE = 6 * 0.724  # a training step: forward + backward = 3 x 724M multiply-adds x 2 FLOP
DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def matmul_gflops(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """Peak GFLOP/s of an n x n matmul in `dtype`: the limit a training step is measured against.
    On a GPU an 8192² matmul, `repeats` x 4 calls queued back to back and timed with CUDA events: a small
    one with a host sync per call would measure the launch, not the arithmetic."""
    if device.type == "cuda":
        return _cuda_matmul_gflops(device, dtype, max(n, 8192), 4 * repeats)
    a, b, c = (torch.randn(n, n, device=device).to(dtype) for _ in range(3))
    return 2 * n**3 / time_call(lambda: torch.matmul(a, b, out=c), device, repeats) / 1e9  # no allocation timed


def _cuda_matmul_gflops(device: torch.device, dtype: torch.dtype, n: int, calls: int) -> float:
    a, b, c = (torch.randn(n, n, device=device).to(dtype) for _ in range(3))
    torch.matmul(a, b, out=c)  # warm-up: cuBLAS picks its kernel
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        torch.matmul(a, b, out=c)
    end.record()
    end.synchronize()
    return 2 * n**3 * calls / (start.elapsed_time(end) / 1e3) / 1e9


NETS = {"paper AlexNet": lambda: AlexNet(1000), "torchvision alexnet": lambda: torchvision.models.alexnet()}


def setting_speed(net: str, dtype: str, channels_last: bool, compiled: bool, device: torch.device,
                  batch_size: int, steps: int) -> tuple[float, str | None]:
    """Training img/s of one net in one setting, and why it could not run (None when it did)."""
    seed_everything(0)
    model = NETS[net]().to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    try:
        runner = torch.compile(model) if compiled else model
        speed = model_throughput(runner, optimizer, batch_size, 1000, steps=steps, amp_dtype=DTYPES[dtype],
                                 channels_last_inputs=channels_last)
        return speed["img_per_s"], None
    except Exception as failure:  # torch.compile needs a compiler toolchain; record why it did not run
        return float("nan"), f"{type(failure).__name__}: {str(failure).splitlines()[0][:120]}"


def chosen_dtype(device: torch.device) -> str:
    """The DTYPES key of what training picks on `device` ("auto": backend.amp_dtype)."""
    return "bf16" if amp_dtype(device, "auto") is not None else "fp32"


def setting_work(device: torch.device, dtype: str, batch_size: int, steps: int) -> tuple[int, int]:
    """(batch, steps) to time `dtype` with: bf16 where the device only emulates it trains ~10x slower (an
    AVX2 CPU: 44 against 412 img/s for CifarAlexNet), so there a quarter of the batch and one step keep the
    bench to minutes; the rows say which batch and steps each had."""
    if dtype == "bf16" and not bf16_is_fast(device):
        return max(1, batch_size // 4), 1
    return batch_size, steps


def speed_without_huge_pages(dtype: str, batch_size: int, steps: int) -> tuple[float, str | None]:
    """The paper's AlexNet in `dtype` + channels_last once more, in a fresh process with
    THP_MEM_ALLOC_ENABLE=0: torch reads the setting once, so the comparison needs its own process."""
    code = ("import json, torch; from alexnet_book.bench import setting_speed; "
            f"print(json.dumps(setting_speed('paper AlexNet', '{dtype}', True, False, torch.device('cpu'), {batch_size}, {steps})))")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "THP_MEM_ALLOC_ENABLE": "0"},
                          capture_output=True, text=True)
    if done.returncode:
        return float("nan"), done.stderr.strip().splitlines()[-1][:120]
    return tuple(json.loads(done.stdout.splitlines()[-1]))


def training_speeds(device: torch.device, batch_size: int, steps: int) -> pd.DataFrame:
    """Training img/s of the paper's AlexNet and torchvision's alexnet in each setting, with each
    one's fraction of the matmul limit in its dtype, each row printed as it is measured. torch.compile and, on
    CPU, a run without huge-page allocations (the `huge_pages` column) are timed in the dtype training uses here."""
    limits = {name: matmul_gflops(device, dtype or torch.float32) for name, dtype in DTYPES.items()}
    chosen = chosen_dtype(device)
    settings = [(dtype, cl, False) for dtype in DTYPES for cl in (False, True)] + [(chosen, True, True)]
    huge_pages = huge_page_allocations() if device.type == "cpu" else None
    rows = []

    def add(net: str, dtype: str, channels_last: bool, compiled: bool, pages: bool | None, measure) -> None:
        batch, n = setting_work(device, dtype, batch_size, steps)
        img_per_s, error = measure(batch, n)
        rows.append({"net": net, "dtype": dtype, "channels_last": channels_last, "compile": compiled,
                     "huge_pages": pages, "batch": batch, "steps": n, "img_per_s": img_per_s, "error": error})
        print(f"  {net:20s} {dtype}  channels_last={channels_last!s:5}  compile={compiled!s:5}  batch {batch} x {n} "
              f"steps: {img_per_s:8.1f} img/s" + (f"  ({error})" if error else ""), flush=True)

    print(f"training img/s (training here uses {chosen}: backend.amp_dtype):", flush=True)
    for net in NETS:
        for dtype, cl, compiled in settings:
            add(net, dtype, cl, compiled, huge_pages,
                lambda batch, n: setting_speed(net, dtype, cl, compiled, device, batch, n))
    if huge_pages:
        add("paper AlexNet", chosen, True, False, False, lambda batch, n: speed_without_huge_pages(chosen, batch, n))
    table = pd.DataFrame(rows)
    table["matmul_gflops"] = table.dtype.map(limits)
    table["fraction_of_matmul_limit"] = table.img_per_s * GFLOP_PER_IMAGE / table.matmul_gflops
    return table[["net", "dtype", "channels_last", "compile", "huge_pages", "batch", "steps", "img_per_s",
                  "matmul_gflops", "fraction_of_matmul_limit", "error"]]


def write_jpeg_tree(root: Path, classes: int = 4, per_class: int = 32, size: tuple[int, int] = (320, 400)) -> Path:
    """A small ImageFolder tree of random JPEGs of ImageNet-like size, for the loader benchmark."""
    g = torch.Generator().manual_seed(0)
    for c in range(classes):
        folder = root / "train" / f"n{c:08d}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = torch.randint(0, 256, (3, *size), dtype=torch.uint8, generator=g)
            torchvision.io.write_jpeg(image, str(folder / f"{i}.JPEG"), quality=90)
    return root


def cifar_data_path(split_dir: Path, batch_size: int = 128, batches: int = 40, workers: int = 2) -> dict[str, float]:
    """img/s of the book's CIFAR path (decoded once; crops and flips as tensor ops) and of the usual
    torchvision ImageFolder + PIL transforms + DataLoader, over the same JPEG files."""
    files, labels, classes = data.list_image_folder(split_dir)
    n = min(len(files), batch_size * batches)
    tensors = data.ImageSet(data.decode_files(files[:n]), torch.tensor(labels[:n]), classes)
    normalize = Normalize.from_images(tensors.images)
    ours = TensorLoader(tensors, batch_size, shuffle=True, transform=TrainTransform(normalize, crop=28))
    book = loader_throughput(ours, batches=len(ours) - 1)
    pil = torchvision.transforms
    usual = torchvision.datasets.ImageFolder(str(split_dir), transform=pil.Compose([
        pil.RandomCrop(28), pil.RandomHorizontalFlip(), pil.ToTensor(),
        pil.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))]))
    usual = torch.utils.data.Subset(usual, torch.randperm(len(usual))[:n].tolist())
    loader = torch.utils.data.DataLoader(usual, batch_size, shuffle=True, num_workers=workers, drop_last=True)
    torchvision_way = loader_throughput(loader, batches=len(loader) - 1)
    return {"book_img_per_s": book["img_per_s"], "torchvision_pil_img_per_s": torchvision_way["img_per_s"],
            "speedup": book["img_per_s"] / torchvision_way["img_per_s"], "images": n, "workers": workers}


def folder_loader(root: Path, workers: int, device: torch.device, batch_size: int = 16) -> dict[str, float]:
    """img/s per worker of the ImageNet loader: JPEG decode, shorter side to 256, centre 256, in workers."""
    dataset = data.ImageFolderDataset(root, "train")
    loader = FolderLoader(dataset, batch_size, shuffle=True, device=device, workers=workers)
    speed = loader_throughput(loader, batches=len(loader) - 1)
    return {"workers": workers, "img_per_s": speed["img_per_s"], "img_per_s_per_worker": speed["img_per_s"] / max(workers, 1)}


def jpeg_decode_speed(root: Path, device: torch.device, batch_size: int = 64) -> float:
    """img/s of torchvision.io.decode_jpeg on `device` (nvjpeg on a GPU, one thread on the CPU) over
    the JPEGs under `root`, read into memory first and decoded `batch_size` files per call."""
    encoded = [torchvision.io.read_file(str(path)) for path in sorted(root.rglob("*.JPEG"))]
    batches = [encoded[i : i + batch_size] for i in range(0, len(encoded), batch_size)]
    torchvision.io.decode_jpeg(batches[0][:1], device=device)  # warm-up: nvjpeg's handles
    sync(device)
    tic = time.perf_counter()
    for batch in batches:
        torchvision.io.decode_jpeg(batch, device=device)
    sync(device)
    return len(encoded) / (time.perf_counter() - tic)


# the nets of the section notebooks, whose `<notebook>@cuda` budgets (profiles.py) are estimates until timed
CIFAR_NETS = {"layers-80sec (02)": lambda: Layers80Sec("relu"), "-11pct (03)": lambda: ConvLocal(lrn=True),
              "CifarAlexNet (04-07, 10)": lambda: CifarAlexNet(), "CifarAlexNet in 2 groups (09)": lambda: CifarAlexNet(groups=2)}


def cifar_epoch_seconds(device: torch.device, batch_size: int = 128, steps: int = 50,
                        images: int = 50_000) -> dict[str, float]:
    """Seconds to train one epoch of `images` 32x32 images, per section net, as the notebooks train
    (the dtype backend.amp_dtype picks, channels_last, the data already on the device)."""
    dtype, seconds = amp_dtype(device, "auto"), {}
    for name, make in CIFAR_NETS.items():
        seed_everything(0)
        model = make().to(device, memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        speed = model_throughput(model, optimizer, batch_size, 10, side=32, steps=steps, amp_dtype=dtype,
                                 channels_last_inputs=True)
        seconds[name] = images / speed["img_per_s"]
    return seconds


def lrn_speeds(device: torch.device, shape=(128, 96, 55, 55), repeats: int = 5) -> pd.DataFrame:
    """Forward and forward+backward milliseconds of conv1's LRN at batch 128, channels_last, in fp32 and
    in bf16 (training's dtype under autocast): ours fused by torch.compile and eager, against torch's
    where torch has a kernel."""
    rows = []
    lrns = {"alexnet_book.LRN": (LRN.convention("cuda-convnet"), contextlib.nullcontext),
            "alexnet_book.LRN, unfused": (LRN.convention("cuda-convnet"), unfused_lrn),
            "torch.nn.LocalResponseNorm": (torch.nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0), contextlib.nullcontext)}
    for dtype in (torch.float32, torch.bfloat16):
        x = (10 * torch.randn(shape, device=device)).to(dtype).contiguous(memory_format=torch.channels_last).requires_grad_()
        grad = torch.randn_like(x)
        for name, (lrn, way) in lrns.items():
            row = {"lrn": name, "dtype": str(dtype).removeprefix("torch.")}
            try:
                with way():
                    row["forward_ms"] = 1e3 * time_call(lambda: lrn(x), device, repeats)
                    row["forward_backward_ms"] = 1e3 * time_call(lambda: lrn(x).backward(grad), device, repeats)
            except (NotImplementedError, RuntimeError) as error:  # torch's LRN has no bf16 kernel on CPU
                row["error"] = str(error).splitlines()[0]
            rows.append(row)
    return pd.DataFrame(rows)


def make_test_seconds() -> float:
    """Wall time of the README's test command, `make test`, run here in a subprocess."""
    from .results import REPO

    tic = time.perf_counter()
    subprocess.run(["make", "test"], cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - tic


def run(device: torch.device, batch_size: int, steps: int, cifar_dir: Path | None) -> dict:
    tic = time.perf_counter()
    chosen = dtype_name(amp_dtype(device, "auto"))
    result = {"run": run_record("bench", device, [0], chosen), "gflop_per_training_image": GFLOP_PER_IMAGE,
              "batch_size": batch_size, "training": training_speeds(device, batch_size, steps).to_dict("records")}
    print("LRN ...", flush=True)
    result["lrn"] = lrn_speeds(device).to_dict("records")
    print("ImageFolder loader ...", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = write_jpeg_tree(Path(tmp))
        result["imagefolder_loader"] = [folder_loader(root, workers, device) for workers in (1, 2)]
    if cifar_dir is not None:
        print("CIFAR data path ...", flush=True)
        result["cifar_data_path"] = cifar_data_path(cifar_dir)
    result["run"]["wall_time_s"] = round(time.perf_counter() - tic, 1)
    sync(device)
    return result


def to_markdown(result: dict) -> str:
    def table(rows, digits: int = 2) -> str:
        return "```\n" + pd.DataFrame(rows).round(digits).to_string(index=False) + "\n```"

    training = pd.DataFrame(result["training"]).drop(columns="error")
    lines = [f"# make bench: {result['run']['device']}", "",
             f"Training here runs in {result['run'].get('dtype', 'float32')} (backend.amp_dtype: bf16 only where the "
             "device computes it natively).", "",
             f"Training at 224x224, batch {result['batch_size']} (each row's batch and steps beside it); fraction = img/s x {GFLOP_PER_IMAGE:.2f} GFLOP / the matmul limit in that dtype; "
             "huge_pages: large CPU tensors on transparent huge pages (THP_MEM_ALLOC_ENABLE, on by default):", "",
             table(training, 3), "", "LRN at conv1's size (96 x 55 x 55), batch 128:", "", table(result["lrn"]), "",
             "ImageFolder loader (generated 320x400 JPEGs, decode + resize in workers):", "",
             table(result["imagefolder_loader"], 1), ""]
    if "make_test_seconds" in result:
        lines += [f"`make test` took {result['make_test_seconds']:.0f} s.", ""]
    if "cifar_data_path" in result:
        c = result["cifar_data_path"]
        lines += [f"CIFAR data path: the book's {c['book_img_per_s']:,.0f} img/s against torchvision ImageFolder + PIL "
                  f"+ DataLoader ({c['workers']} workers) at {c['torchvision_pil_img_per_s']:,.0f} img/s: {c['speedup']:.1f}x", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device")
    parser.add_argument("--profile", help="whose training batch to time (default: $ALEXNET_BOOK_PROFILE, else cifar)")
    parser.add_argument("--batch-size", type=int, help="training batch for the throughput runs (default: the "
                                                         "profile's, notebook 08's: 128 in cifar and imagenet)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per setting")
    parser.add_argument("--make-test", action="store_true", help="also time `make test` (several minutes)")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    batch_size = args.batch_size or get_profile(args.profile).budget("08_full_training").batch_size
    folder = data.data_root() / "cifar10-jpeg" / "train"
    result = run(device, batch_size, args.steps, folder if folder.is_dir() else None)
    if args.make_test:
        result["make_test_seconds"] = round(make_test_seconds(), 1)
    out = results_root() / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (out / "bench.md").write_text(to_markdown(result) + "\n")
    print(to_markdown(result))


if __name__ == "__main__":
    main()
