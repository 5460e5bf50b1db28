"""One book: the committed notebooks, claims.csv and the README come from the same results.

notebook 11's stored claims table must be claims.csv, and notebook 00's table of notebooks the
notebooks that exist; the README's generated block is checked in test_report.py.
"""

import html
import json
import math
import re

import pandas as pd

from alexnet_book import claims
from alexnet_book.profiles import get_profile
from alexnet_book.reproduce import notebooks
from alexnet_book.results import REPO

CIFAR = REPO / "results" / "cifar"


def stored_output(notebook: str, marker: str, mime: str) -> str:
    """The `mime` output of the first cell of a committed notebook whose source contains `marker`."""
    nb = json.loads((REPO / "notebooks" / f"{notebook}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and marker in "".join(cell["source"]):
            for output in cell["outputs"]:
                if mime in output.get("data", {}):
                    return "".join(output["data"][mime])
    raise AssertionError(f"{notebook} has no stored {mime} output for a cell with {marker!r}: run `make book`")


def html_rows(table: str) -> list[list[str]]:
    rows = re.findall(r"<tr.*?>(.*?)</tr>", table, flags=re.S)[1:]  # the header row goes
    return [[html.unescape(cell.strip()) for cell in re.findall(r"<t[hd].*?>(.*?)</t[hd]>", row, flags=re.S)]
            for row in rows]


def test_notebook_11_shows_the_committed_claims_table():
    stored = html_rows(stored_output("11_report", "report.write_claims", "text/html"))
    header = re.findall(r"<th>(\w*)</th>", stored_output("11_report", "report.write_claims", "text/html"))
    claims = pd.read_csv(CIFAR / "claims.csv", keep_default_na=False)
    assert len(stored) == len(claims), "notebook 11's claims table is stale: run `make book ONLY=11`"
    for row, (_, expected) in zip(stored, claims.iterrows()):
        shown = dict(zip(header, row))
        for column in ("id", "verdict", "ours", "note"):
            value = str(expected[column])
            assert shown[column] == value or (shown[column].endswith("...") and value.startswith(shown[column][:-3])), \
                f"notebook 11 shows {column} {shown[column]!r} for {expected['id']}, claims.csv {value!r}: run `make book ONLY=11`"


def test_notebook_00_lists_the_notebooks_that_exist():
    listed = stored_output("00_setup", "reproduce.measured_times()", "text/plain").splitlines()[2:]
    names = [line.split()[0] for line in listed if line.split()[0] != "total"]
    assert names == [p.stem for p in notebooks()], "notebook 00's table of notebooks is stale: run `make book ONLY=00`"


def _stats(entry: dict) -> dict:
    std = entry["spread"] if entry["spread"] is not None else math.nan
    return {"mean": entry["measured"], "std": std, "n": entry["n"]}


def _words(note: str) -> str:
    return re.sub(r"-?\d+\.\d+", "#", note)


def _rejudge(entry: dict, metrics: dict):
    """What claims.py's rule says today of a committed entry's numbers and the regime it recorded (the rules
    decide the regime from those numbers, so nothing of the rule is repeated here)."""
    regime, stats = entry.get("regime") or {}, _stats(entry)
    return {
        "C1": lambda: claims.c1_relu_speedup(stats, crossed=regime["crossed_25"]),
        "C2": lambda: claims.c2_two_gpus(stats, converged=regime["converged"]),
        "C3": claims.c3_lrn_imagenet,
        "C4": lambda: claims.c4_lrn_cifar(stats, regime["gain"]),
        "C5": lambda: claims.c5_overlapping_pooling(stats, regime["z2_gap"], regime["gain"]),
        "C6": lambda: claims.c6_size(metrics["parameters"], metrics["neurons"]),
        "C7": lambda: claims.c7_pca_lighting(stats, regime["none_gap"], regime["gain"]),
        "C8": lambda: claims.c8_ten_patches(stats),
        "C9": lambda: claims.c9_dropout(metrics["gap_reduction"], stats, regime["no_dropout_gap"],
                                        regime["converged"]),
        "C10": lambda: claims.c10_imagenet_error(None, None, imagenet=False),
        "C11": lambda: claims.c11_colour_groups(
            [g for g in metrics["group_contrast"] if g["net"] == "two groups"],
            [g for g in metrics["group_contrast"] if g["net"] != "two groups"],
            travel=regime["conv1_travel_min"]),
        "C12": lambda: claims.c12_depth(stats, regime["gain"]),
        "C13": lambda: claims.c13_ensemble(stats, models=len(metrics["ensemble"]["single"]),
                                           converged=regime["members_converged"]),
    }[entry["id"]]()


def test_every_committed_verdict_is_what_the_current_rules_say_of_its_numbers():
    """A rule changed in claims.py after a notebook ran leaves a verdict or note that the code no longer
    gives: rerun that notebook (`make book ONLY=NN`)."""
    judged = 0
    for path in sorted(CIFAR.glob("*/metrics.json")):
        record = json.loads(path.read_text())
        for entry in record["claims"]:
            where = f"{entry['id']} in {path.parent.name} (code {record['run']['git']})"
            try:
                verdict, _, note = _rejudge(entry, record["metrics"])
            except KeyError as missing:
                raise AssertionError(f"{where} records no {missing}, which its rule now takes: rerun it") from None
            assert entry["verdict"] == verdict, f"{where}: committed {entry['verdict']!r}, rule now {verdict!r}"
            # the entry keeps its mean and spread to 2 decimals, so an interval recomputed from them may differ in
            # its last digit: the note's words must match, its decimals need not
            assert _words(note) in _words(entry["note"]), f"{where}: the rule's note is now {note!r}; committed {entry['note']!r}"
            judged += 1
    assert judged == len(claims.CLAIMS)


def test_every_committed_notebook_ran_at_its_current_cifar_budget():
    """A budget changed in profiles.py after a notebook ran leaves outputs from another experiment:
    rerun that notebook (`make book ONLY=NN`)."""
    profile = get_profile("cifar")
    for path in sorted(CIFAR.glob("*/metrics.json")):
        run = json.loads(path.read_text())["run"]
        budget = json.loads(json.dumps(vars(profile.budget(path.parent.name, run["device"].split(":")[0]))))
        assert run["budget"] == budget, f"{path.parent.name} ran at {run['budget']}; profiles.py now says {budget}"
