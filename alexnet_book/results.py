"""Where a notebook's results go: results/<profile>/<notebook>/{metrics.json, *.png, *.csv}.

metrics.json records the run (git sha, versions, device, seeds, profile, wall time), the
notebook's measurements and its claim entries (see claims.py).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import torch

from .claims import CLAIMS, Judgement, ci, claim_entry
from .profiles import PROTOCOL_VERSION
from .stats import Interval

RESULTS_ENV = "ALEXNET_BOOK_RESULTS"
REPO = Path(__file__).resolve().parents[1]
CODE = ("alexnet_book", "pyproject.toml", "constraints.txt")  # what decides a run's numbers


def shown(path: Path) -> Path:
    """A path as printed for a reader: relative to the checkout when inside it, so executed notebooks
    do not carry one machine's folders."""
    try:
        return Path(path).resolve().relative_to(REPO)
    except ValueError:
        return Path(path)


def results_root() -> Path:
    """$ALEXNET_BOOK_RESULTS, else results/ in the source checkout, else ./results."""
    if os.environ.get(RESULTS_ENV):
        return Path(os.environ[RESULTS_ENV])
    return REPO / "results" if (REPO / "pyproject.toml").exists() else Path.cwd() / "results"


def git_sha() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        # dirty: the code differs from the commit (results and executed notebooks changing is what a run does)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *CODE], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu: {cpu_model()}, {torch.get_num_threads()} threads"
    return str(device)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str | None]:
    import numpy
    import pandas
    import torchvision

    try:
        import matplotlib
    except ModuleNotFoundError:  # only figures need it: make gpu-check records a GPU image that lacks it
        matplotlib = None
    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "pandas": pandas.__version__,
            "matplotlib": matplotlib.__version__ if matplotlib else None}


def huge_page_allocations() -> bool:
    """Whether torch puts large CPU tensors on transparent huge pages (THP_MEM_ALLOC_ENABLE, see
    alexnet_book/__init__.py). Such allocations are page-aligned; glibc's large ones never are."""
    return torch.empty(4 << 20, dtype=torch.uint8).data_ptr() % 4096 == 0


def run_record(profile: str, device: torch.device, seeds, dtype: str = "float32") -> dict:
    """What every metrics.json records of its run: dtype is the training dtype under autocast (backend.dtype_name),
    protocol the version of the declared budgets it ran under (docs/protocol.md)."""
    return {"profile": profile, "protocol": PROTOCOL_VERSION, "device": device_name(device), "dtype": dtype, "seeds": list(seeds), "git": git_sha(),
            "versions": versions(), "platform": platform.platform(), "cpu_huge_pages": huge_page_allocations(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


class Results:
    """A notebook's results folder: figures, tables, measurements and claim entries."""

    def __init__(self, notebook: str, profile: str, device: torch.device, seeds=(0,), budget: dict | None = None,
                 dtype: str = "float32"):
        self.dir = results_root() / profile / notebook
        self.dir.mkdir(parents=True, exist_ok=True)
        self.record = {**run_record(profile, device, seeds, dtype), "budget": budget}
        self.metrics: dict = {}
        self.claims: list[dict] = []
        self._start = time.perf_counter()

    def figure(self, fig, name: str) -> Path:
        """Save a matplotlib figure as results/<profile>/<notebook>/<name>.png."""
        path = self.dir / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
        return path

    def table(self, frame, name: str) -> Path:
        path = self.dir / f"{name}.csv"
        frame.to_csv(path, index=False)
        return path

    def claim(self, claim_id: str, measured, verdict: str, rule: str, **details) -> dict:
        """Record a claim entry (see claims.claim_entry); replaces an earlier entry with the same id."""
        entry = claim_entry(claim_id, measured, verdict, rule, **details)
        self.claims = [c for c in self.claims if c["id"] != claim_id] + [entry]
        return entry

    def judged(self, claim_id: str, estimate: dict | Interval, judgement: Judgement, unit: str, note: str = "",
               regime: dict | None = None) -> dict:
        """Record a claim with the Judgement its rule in claims.py returned, and print it for the reader. The
        estimate is a per-seed statistic ({"mean", "std", "n"}, e.g. experiment.paired_gain) or a
        stats.Interval (a bootstrap over test images); the entry keeps its interval and what its n counts."""
        interval = ci(estimate)
        note = "; ".join(part for part in (note, judgement.note) if part)
        spread = round(interval.sd, 2) if interval.bounded else None
        entry = self.claim(claim_id, round(interval.mean, 2), judgement.verdict, judgement.rule, spread=spread,
                           n=interval.n, unit=unit, note=note, regime=regime, interval=interval.as_dict(),
                           sensitivity=judgement.sensitivity_text)
        print(f"{claim_id}: {interval.describe()} {unit} (paper: {CLAIMS[claim_id].paper}) -> {judgement.verdict}"
              + (f"\n    {note}" if note else ""))
        if judgement.sensitivity is not None:
            print(judgement.sensitivity.to_string())
        return entry

    def save(self, **metrics) -> dict:
        """Write metrics.json (the run record, measurements, claims) and return what was written."""
        self.metrics.update(metrics)
        payload = {"run": {**self.record, "wall_time_s": round(time.perf_counter() - self._start, 1)},
                   "metrics": self.metrics, "claims": self.claims}
        (self.dir / "metrics.json").write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")
        print(f"wrote {shown(self.dir / 'metrics.json')}")
        return payload


def _jsonable(value):
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to metrics.json")
