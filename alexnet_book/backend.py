"""Seed, device and autocast dtype: what this machine runs, and runs fast. The core modules (engine,
train, bench, experiment) and the notebook layer (runtime) all take these from here.

bf16 autocast pays only where the hardware computes in bf16: on CUDA GPUs that support it, and on
CPUs with native bf16 (AVX-512 BF16 or AMX). On an AVX2-only CPU oneDNN emulates bf16 and the book's
nets trained 10x slower than in fp32 (issue 30: CifarAlexNet 44 against 412 img/s), so there the
choice is fp32.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import warnings

import numpy as np
import torch

DEVICE_ENV = "ALEXNET_BOOK_DEVICE"
AMP_ENV = "ALEXNET_BOOK_AMP"  # "auto", "bfloat16" or "float32": overrides the profile's setting
AMP_CHOICES = ("auto", "bfloat16", "float32")


def seed_everything(seed: int) -> None:
    """The one seed helper: Python, NumPy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA and MPS too


def pick_device(name: str | None = None) -> torch.device:
    """The argument, else $ALEXNET_BOOK_DEVICE, else cuda, then mps, then cpu."""
    name = name or os.environ.get(DEVICE_ENV)
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@functools.cache
def cpu_runs_bf16_natively() -> bool:
    """True on CPUs whose bf16 matmuls run in hardware (AVX-512 BF16 or AMX tiles).

    Two tests, both needed: the CPU's flags (torch.cpu reads cpuid, and ignores any emulation), and
    what the kernels will actually use: oneDNN's bf16 support honours ONEDNN_MAX_CPU_ISA and ATen's
    capability honours ATEN_CPU_CAPABILITY, so `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2` reads
    as the AVX2 machine it emulates.
    """
    flags = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or \
        getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    kernels = torch.backends.cpu.get_cpu_capability().startswith("AVX512") and \
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return bool(flags and kernels)


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 autocast speeds `device` up rather than emulating bf16 in software.

    mps (read, not measured: no Apple GPU here): bf16 needs macOS 14, and Apple GPUs before the M3 family
    have no bf16 arithmetic (Metal converts to fp32 around each op), so "auto" keeps fp32 there;
    ALEXNET_BOOK_AMP=bfloat16 forces bf16 on a Mac that runs it well."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_runs_bf16_natively()
    return False


def amp_dtype(device: torch.device, setting: str | None = "auto") -> torch.dtype | None:
    """The autocast dtype a run uses on `device`: None (fp32) or torch.bfloat16.

    `setting` is a profile's (or the CLI's): "auto" chooses what the device runs fast, "bfloat16" and
    "float32" (or None) force one. $ALEXNET_BOOK_AMP, when set, overrides it.
    """
    setting = os.environ.get(AMP_ENV) or setting or "float32"
    if setting not in AMP_CHOICES:
        raise ValueError(f"unknown autocast setting {setting!r}; valid: {', '.join(AMP_CHOICES)}")
    if setting == "auto":
        return torch.bfloat16 if bf16_is_fast(device) else None
    return torch.bfloat16 if setting == "bfloat16" else None


@contextlib.contextmanager
def exact_fp32():
    """fp32 matmuls and convolutions in full precision inside the block. CUDA's defaults round convolution
    inputs to TF32 (10-bit mantissa, ~1e-3 relative), which hides any comparison finer than that."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def dtype_name(dtype: torch.dtype | None) -> str:
    """How results record the training dtype: "bfloat16" (autocast) or "float32"."""
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def autocast(device: torch.device, dtype: torch.dtype | None):
    """bf16/fp16 autocast when a dtype is given, else nothing. On Apple's mps, bf16 tensors need macOS 14
    (pytorch#119641) and bf16 autocast came with pytorch#139390; where bf16 is missing the run goes on
    in fp32, and says so."""
    if dtype is None:
        return contextlib.nullcontext()
    if device.type == "mps" and dtype == torch.bfloat16 and not _mps_has_bf16():
        warnings.warn("bfloat16 is not supported on this mps device (macOS 14+ needed): training in fp32", stacklevel=2)
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@functools.cache
def _mps_has_bf16() -> bool:
    try:
        torch.ones(1, device="mps", dtype=torch.bfloat16)
        return True
    except (TypeError, RuntimeError):
        return False
