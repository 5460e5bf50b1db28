"""Local response normalization (section 3.3): the LRN layer, its three published conventions, and
the autograd Function that runs it (the gradient written out, the elementwise passes fused by
torch.compile where it can). model.py and cifar_nets.py build their nets from `LRN.convention`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

import torch
from torch import nn

# Section 3.3's constants read three ways: (size n, alpha, beta, k, divide alpha by n?).
# "paper": the formula as printed, = torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2).
# "cuda-convnet": Krizhevsky's code divided alpha by n, = LocalResponseNorm(5, 1e-4, 0.75, k=2).
# "caffe": bvlc_alexnet, alpha/n with k=1, = LocalResponseNorm(5, 1e-4, 0.75, k=1).
LRN_CONVENTIONS = {
    "paper": dict(size=5, alpha=1e-4, beta=0.75, k=2.0, divide_alpha_by_n=False),
    "cuda-convnet": dict(size=5, alpha=1e-4, beta=0.75, k=2.0, divide_alpha_by_n=True),
    "caffe": dict(size=5, alpha=1e-4, beta=0.75, k=1.0, divide_alpha_by_n=True),
}


class LRN(nn.Module):
    """Local response normalization across channels, section 3.3:

        b_i = a_i / (k + alpha * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} a_j^2) ^ beta

    The window holds the n channels centred on i, cut at the ends of the channel range. With
    divide_alpha_by_n the sum is scaled by alpha/n instead of alpha, as Krizhevsky's
    cuda-convnet, Caffe and torch.nn.LocalResponseNorm do. With groups > 1 the channels form
    that many consecutive groups and each is normalized on its own, as each of the paper's two
    GPUs normalized only its own kernels. Use `LRN.convention(name)` for the named settings in
    LRN_CONVENTIONS.
    """

    def __init__(
        self,
        size: int = 5,
        alpha: float = 1e-4,
        beta: float = 0.75,
        k: float = 2.0,
        divide_alpha_by_n: bool = True,
        groups: int = 1,
    ):
        super().__init__()
        if size < 1 or size % 2 == 0:
            raise ValueError(f"LRN size must be odd (a window centred on each channel), got {size}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k
        self.divide_alpha_by_n = divide_alpha_by_n
        self.groups = groups

    @classmethod
    def convention(cls, name: str, groups: int = 1) -> LRN:
        """The LRN of one named convention: "paper", "cuda-convnet" or "caffe"."""
        if name not in LRN_CONVENTIONS:
            valid = ", ".join(repr(n) for n in LRN_CONVENTIONS)
            raise ValueError(f"unknown LRN convention {name!r}; valid: {valid}")
        return cls(**LRN_CONVENTIONS[name], groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] % self.groups:
            raise ValueError(f"LRN with groups={self.groups} got {x.shape[1]} channels, not divisible")
        scale = self.alpha / self.size if self.divide_alpha_by_n else self.alpha
        return _LRNFunction.apply(x, self.size, scale, self.beta, self.k, self.groups)

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, "
            f"divide_alpha_by_n={self.divide_alpha_by_n}, groups={self.groups}"
        )


def _band(c: int, size: int, groups: int, device, dtype) -> torch.Tensor:
    """The (c, c) 0/1 matrix whose column i marks the `size` channels centred on channel i, within its group."""
    channel = torch.arange(c, device=device)
    return (((channel[:, None] - channel[None, :]).abs() <= size // 2)
            & (channel[:, None] // (c // groups) == channel[None, :] // (c // groups))).to(dtype)


def _window_sum(s: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
    """For each channel, the sum of `s` over its window: a matmul with the band matrix over the channel
    axis. For the channels_last tensors that training uses, (N*H*W, C) is a free view, and one matmul
    beats summing `size` shifted slices (strided adds) several times over."""
    n, c, h, w = s.shape
    return (s.permute(0, 2, 3, 1).reshape(n * h * w, c) @ band).view(n, h, w, c).permute(0, 3, 1, 2)


def _lrn_forward(x: torch.Tensor, band: torch.Tensor, k: float, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """y = x * t^-beta with t = k + window_sum(x^2) (the scale folded into `band`), in band's dtype
    (fp32 at least), y rounded once to x's dtype; t is kept for the backward pass."""
    x32 = x.to(band.dtype)
    t = _window_sum(x32.square(), band) + k
    return (x32 * t.pow(-beta)).to(x.dtype), t


def _lrn_backward(x: torch.Tensor, t: torch.Tensor, g: torch.Tensor, band: torch.Tensor, beta: float) -> torch.Tensor:
    """dL/dx = g * t^-beta - x * window_sum(g * y / t), the factor 2 * scale * beta folded into `band`."""
    x32 = x.to(t.dtype)
    gr = g.to(t.dtype) * t.pow(-beta)
    return (gr - x32 * _window_sum(gr * x32 / t, band)).to(g.dtype)


@contextlib.contextmanager
def _quiet_cpp_extension():
    """Inductor imports torch.utils.cpp_extension, which on a CUDA build of torch without a GPU logs a warning
    ("No CUDA runtime is found, using CUDA_HOME=...") into every notebook that compiles: hidden, errors kept."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class _Fused:
    """A function run through torch.compile, which fuses its elementwise passes around the matmul into
    one or two loops: LRN's tensors are the net's largest and each eager pass is a trip through memory,
    so on 2 CPU cores this takes CifarAlexNet's epoch (training and test pass) from ~19 s to ~13 s,
    with the eager results to rounding (tested). Where compiling fails (no C++ compiler, an unsupported device)
    or ALEXNET_BOOK_FUSED_LRN=0, the same function runs eagerly, and a warning says so once.

    Each input shape gets its own kernel (dynamic=False: sizes known at compile time vectorize best); the
    two nets of notebook 08 at training, test and ten-patch batches need more than dynamo's default of 8
    per function, past which it would fall back to eager, so the limit is raised while these run."""

    RECOMPILE_LIMIT = 64

    def __init__(self, fn):
        self.fn, self.compiled = fn, None
        self.enabled = os.environ.get("ALEXNET_BOOK_FUSED_LRN", "1") != "0"

    def __call__(self, *args):
        if self.enabled and args[0].dtype != torch.float64:  # float64 is for the exactness tests: eager
            try:
                if self.compiled is None:
                    self.compiled = torch.compile(self.fn, dynamic=False)
                with torch._dynamo.config.patch(recompile_limit=self.RECOMPILE_LIMIT), _quiet_cpp_extension(), \
                        torch._inductor.config.patch({"cpp.simdlen": _cpu_simd_width()}):
                    return self.compiled(*args)
            except Exception as failure:  # noqa: BLE001 (any compile failure: the eager function is the same math)
                if _out_of_memory(failure):  # not a compile failure: the eager math would run out of memory too
                    raise
                self.enabled = False
                warnings.warn(f"LRN runs unfused: torch.compile failed ({type(failure).__name__}: {failure})", stacklevel=2)
        return self.fn(*args)


def _cpu_simd_width() -> int | None:
    """The float lanes of the vector ISA that ATen runs (16 for AVX-512, 8 for AVX2), for inductor's CPU code.

    Left to itself (simdlen None), inductor 2.14's C++ kernels for this function were generated for 8 lanes and
    compiled for 16 on an AVX-512 CPU: each kernel's last store ran 8 floats past its buffer (glibc aborted
    with "malloc(): unaligned tcache chunk" or "double free"), and under ATEN_CPU_CAPABILITY=avx2 the
    outputs were NaN. Naming the width makes the generated loops and the compiled vectors agree."""
    capability = torch.backends.cpu.get_cpu_capability()
    return 16 if capability.startswith("AVX512") else 8 if capability == "AVX2" else None


def _out_of_memory(failure: BaseException | None) -> bool:
    """Whether `failure`, or an exception it was raised from (dynamo wraps what it meets), is out-of-memory."""
    while failure is not None:
        if isinstance(failure, torch.OutOfMemoryError):
            return True
        failure = failure.__cause__ or failure.__context__
    return False


_fused_forward, _fused_backward = _Fused(_lrn_forward), _Fused(_lrn_backward)


@contextlib.contextmanager
def unfused_lrn():
    """LRN runs its eager math inside the block (make bench times both ways)."""
    saved = _fused_forward.enabled, _fused_backward.enabled
    _fused_forward.enabled = _fused_backward.enabled = False
    try:
        yield
    finally:
        _fused_forward.enabled, _fused_backward.enabled = saved


class _LRNFunction(torch.autograd.Function):
    """LRN with its gradient written out, keeping x and t (and the c x c band) for backward instead of autograd's ~10 tensors:
    with t = k + scale * window_sum(x^2) and y = x * t^-beta, the windows being symmetric,

        dL/dx = g * t^-beta - 2 * scale * beta * x * window_sum(g * y / t).

    Everything is computed in fp32 at least, whatever the input's dtype (under bf16 autocast the denominator in
    bf16 was off by up to 1.2%); the output and the gradient are rounded back to the input's dtype
    once. (make bench times it against torch.nn.LocalResponseNorm.)"""

    @staticmethod
    def forward(ctx, x, size, scale, beta, k, groups):
        band = _band(x.shape[1], size, groups, x.device, torch.promote_types(x.dtype, torch.float32))
        with torch.autocast(x.device.type, enabled=False):  # autocast would run the fp32 matmul in bf16
            y, t = _fused_forward(x, band * scale, k, beta)
        ctx.save_for_backward(x, t, band)
        ctx.settings = scale, beta
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        x, t, band = ctx.saved_tensors
        scale, beta = ctx.settings
        with torch.autocast(x.device.type, enabled=False):
            grad = _fused_backward(x, t, g, band * (2 * scale * beta), beta)
        return grad, None, None, None, None, None
