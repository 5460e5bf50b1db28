"""The paper's claims C1..C12 (from shared/paper/alexnet-paper-facts.md) and the claims table.

Notebooks record measured values with `Results.claim`; `write_claims` collects every
results/<profile>/*/metrics.json into claims.csv and claims.md.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

VERDICTS = ("reproduced", "partly", "not reproduced", "not measured at this scale")


@dataclass(frozen=True)
class Claim:
    section: str
    claim: str
    paper: str


CLAIMS: dict[str, Claim] = {
    "C1": Claim("3.1", "ReLU reaches 25% CIFAR-10 training error faster than tanh", "6x fewer epochs"),
    "C2": Claim("3.2", "two-GPU net beats a one-GPU net with half the kernels", "-1.7% top-1, -1.2% top-5"),
    "C3": Claim("3.3", "LRN reduces ILSVRC error", "-1.4% top-1, -1.2% top-5"),
    "C4": Claim("3.3", "LRN on a four-layer CIFAR-10 CNN", "13% -> 11% test error"),
    "C5": Claim("3.4", "overlapping pooling (z=3, s=2) vs z=2, s=2", "-0.4% top-1, -0.3% top-5"),
    "C6": Claim("3.5", "size of the network", "~60M parameters, 650,000 neurons"),
    "C7": Claim("4.1", "PCA lighting augmentation reduces top-1 error", "> 1% top-1"),
    "C8": Claim("4.1", "10-patch testing vs the centre patch", "39.0/18.3 -> 37.5/17.0"),
    "C9": Claim("4.2", "dropout prevents overfitting, roughly doubles iterations to converge", "~2x iterations"),
    "C10": Claim("6", "ILSVRC-2010 test error, one CNN, 10 patches", "37.5% top-1, 17.0% top-5"),
    "C11": Claim("6.1", "conv1 kernels: one GPU colour-agnostic, the other colour-specific", "in every run"),
    "C12": Claim("7", "removing any middle conv layer costs top-1", "~2% top-1"),
}

COLUMNS = ["id", "section", "claim", "paper", "ours", "verdict", "rule", "notebook"]


def claim_entry(claim_id: str, measured, verdict: str, rule: str, *, spread=None, n: int | None = None,
                unit: str = "", note: str = "") -> dict:
    """One claim entry for metrics.json; rejects unknown ids and verdicts."""
    if claim_id not in CLAIMS:
        raise ValueError(f"unknown claim id {claim_id!r}; valid ids: {', '.join(CLAIMS)}")
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; valid verdicts: {', '.join(VERDICTS)}")
    return {"id": claim_id, "paper": CLAIMS[claim_id].paper, "measured": measured, "spread": spread,
            "n": n, "unit": unit, "verdict": verdict, "rule": rule, "note": note}


def gain_verdict(gain: dict, paper_gain: float, unit: str = "points") -> tuple[str, str]:
    """Verdict and its rule for "this reduces error by `paper_gain`", from a gain measured over
    seeds ({"mean", "std", "n"}, e.g. experiment.paired_gain). Noise is judged by 2 standard errors."""
    sem = gain["std"] / math.sqrt(gain["n"]) if gain["n"] > 1 else math.nan
    real = gain["mean"] > 2 * sem  # False when sem is NaN: one seed proves nothing
    big = gain["mean"] >= paper_gain / 2
    verdict = "reproduced" if real and big else "partly" if real or big else "not reproduced"
    rule = (f"reproduced: mean gain >= half the paper's {paper_gain:g} {unit} and > 2 standard errors over seeds; "
            f"partly: only one of the two; not reproduced: neither")
    return verdict, rule


def unsettled(value: float, std: float, n: int, lines) -> str:
    """A caveat when `value` (a mean over n seeds) lies within 2 standard errors of one of a rule's
    `lines`, where other seeds could land on the other side of it; "" when the verdict is clear."""
    sem = std / math.sqrt(n) if n > 1 else math.inf
    near = [line for line in lines if abs(value - line) <= 2 * sem]
    return f"within 2 standard errors of the rule's line at {near[0]:g}, so the verdict is not settled" if near else ""


def specialization_verdict(grouped: dict, control: dict) -> tuple[str, str]:
    """Verdict and rule for C11 from qualitative.group_contrast of the grouped net's two conv1 groups
    and of the same split in an ungrouped control (where the split means nothing)."""
    split = grouped["p_value"] < 0.01
    specific = split and control["p_value"] >= 0.05 and grouped["difference"] > control["difference"]
    verdict = "reproduced" if specific else "partly" if grouped["p_value"] < 0.05 else "not reproduced"
    rule = ("colour-specialization (energy off the grey axis) per conv1 kernel; reproduced: the grouped net's two "
            "groups differ with permutation p < 0.01 while the same split of an ungrouped control does not "
            "(p >= 0.05, smaller difference); partly: the groups differ with p < 0.05 only, or the control "
            "splits too; not reproduced: p >= 0.05")
    return verdict, rule


def format_value(entry: dict) -> str:
    """'12.3 ± 0.4 % (n=3)' from a claim entry; text values pass through."""
    value = entry["measured"]
    if value is None:
        return entry.get("note") or "—"
    text = f"{value:.4g}" if isinstance(value, (int, float)) else str(value)
    if entry.get("spread") is not None:
        text += f" ± {entry['spread']:.2g}"
    if entry.get("unit"):
        text += f" {entry['unit']}"
    if entry.get("n"):
        text += f" (n={entry['n']})"
    return text


def collect_claims(profile_dir: Path) -> pd.DataFrame:
    """Every claim entry under profile_dir/*/metrics.json, plus a row for each claim nobody measured."""
    rows = {}
    for path in sorted(profile_dir.glob("*/metrics.json")):
        for entry in json.loads(path.read_text()).get("claims", []):
            claim = CLAIMS[entry["id"]]
            rows.setdefault(entry["id"], []).append({
                "id": entry["id"], "section": claim.section, "claim": claim.claim, "paper": claim.paper,
                "ours": format_value(entry), "verdict": entry["verdict"], "rule": entry["rule"],
                "notebook": path.parent.name,
            })
    for claim_id, claim in CLAIMS.items():
        rows.setdefault(claim_id, [{
            "id": claim_id, "section": claim.section, "claim": claim.claim, "paper": claim.paper,
            "ours": "—", "verdict": "not measured yet", "rule": "no notebook has recorded it yet", "notebook": "",
        }])
    ordered = [row for claim_id in CLAIMS for row in rows[claim_id]]
    return pd.DataFrame(ordered, columns=COLUMNS)


def write_claims(profile_dir: Path) -> pd.DataFrame:
    """Write claims.csv and claims.md under profile_dir and return the table."""
    table = collect_claims(profile_dir)
    profile_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(profile_dir / "claims.csv", index=False)
    (profile_dir / "claims.md").write_text(to_markdown(table))
    return table


def to_markdown(table: pd.DataFrame, link_prefix: str = "../../notebooks/") -> str:
    """A GitHub markdown table (no tabulate dependency); the notebook column links to the notebook."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in table.itertuples(index=False):
        cells = [str(v).replace("|", "\\|") for v in row]
        if row.notebook:
            cells[-1] = f"[{row.notebook}]({link_prefix}{row.notebook}.ipynb)"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from .results import results_root

    parser = argparse.ArgumentParser(description="Collect claim entries into results/<profile>/claims.csv and .md")
    parser.add_argument("--profile", default="cifar")
    args = parser.parse_args(argv)
    table = write_claims(results_root() / args.profile)
    print(to_markdown(table))


if __name__ == "__main__":
    main()
