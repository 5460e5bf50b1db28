"""One book: the committed notebooks, claims.csv and the README come from the same results.

notebook 11's stored claims table must be claims.csv, and notebook 00's table of notebooks the
notebooks that exist; the README's generated block is checked in test_report.py. The committed verdicts are
re-judged by today's rules where they were written by protocol v2 (those of v1 await their notebooks' rerun).
"""

import html
import json
import math
import re

import pandas as pd
import torch

from alexnet_book import claims, report
from alexnet_book.profiles import PROTOCOL_VERSION, get_profile
from alexnet_book.reproduce import notebooks
from alexnet_book.results import REPO, Results
from alexnet_book.stats import Interval

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


def _interval(entry: dict) -> Interval:
    """The interval an entry recorded (results.judged), JSON's None read back as no bound or no sd."""
    recorded = entry["interval"]
    low, high = (recorded[k] if recorded[k] is not None else sign * math.inf for k, sign in (("low", -1), ("high", 1)))
    return Interval(**{**recorded, "low": low, "high": high, "sd": math.nan if recorded["sd"] is None else recorded["sd"]})


def _by_level(recorded: dict) -> dict:
    """A mapping keyed by a line or level, as metrics.json stores it (string keys), keyed by the number again."""
    return {float(key): value for key, value in recorded.items()}


def _words(note: str) -> str:
    return re.sub(r"-?\d+\.\d+", "#", note)


def _rejudge(entry: dict, metrics: dict) -> claims.Judgement:
    """What claims.py's rule says today of a committed entry's numbers and the regime it recorded (the rules
    decide the regime from those numbers, so nothing of the rule is repeated here)."""
    regime = entry.get("regime") or {}
    estimate = (lambda: _interval(entry))
    return {
        "C1": lambda: claims.c1_relu_speedup(_by_level(metrics["speedup_by_line"]), _by_level(regime["crossed"])),
        "C2": lambda: claims.c2_two_gpus(estimate(), converged=regime["converged"]),
        "C3": claims.c3_lrn_imagenet,
        "C4": lambda: claims.c4_lrn_cifar(estimate(), regime["gain"]),
        "C5": lambda: claims.c5_overlapping_pooling(estimate(), regime["z2_gap"], regime["gain"]),
        "C6": lambda: claims.c6_size(metrics["parameters"], metrics["neurons"]),
        "C7": lambda: claims.c7_pca_lighting(estimate(), regime["none_gap"], regime["gain"]),
        "C8": lambda: claims.c8_ten_patches(estimate(), regime["converged"]),
        "C9": lambda: claims.c9_dropout(metrics["gap_reduction"], _by_level(metrics["pace_ratios"]),
                                        regime["no_dropout_gap"], regime["converged"]),
        "C10": lambda: claims.c10_imagenet_error(None, None, imagenet=False),
        "C11": lambda: claims.c11_colour_groups(
            [g for g in metrics["group_contrast"] if g["net"] == "two groups"],
            [g for g in metrics["group_contrast"] if g["net"] != "two groups"],
            travel=regime["conv1_travel_min"]),
        "C12": lambda: claims.c12_depth(estimate(), regime["gain"], regime["full_train_error"]),
        "C13": lambda: claims.c13_ensemble(estimate(), models=regime["models"], ensembles=regime["ensembles"],
                                           converged=regime["members_converged"]),
    }[entry["id"]]()


def test_every_committed_verdict_is_what_the_current_rules_say_of_its_numbers():
    """A rule changed in claims.py after a notebook ran leaves a verdict or note that the code no longer
    gives: rerun that notebook (`make book ONLY=NN`).

    Every entry written by results.claim or results.judged since protocol v2 has an "interval" key (None where
    a claim has no interval); one without it was judged by protocol v1, which today's rules cannot re-judge.
    """
    judged = 0
    for path in sorted(CIFAR.glob("*/metrics.json")):
        record = json.loads(path.read_text())
        for entry in record["claims"]:
            where = f"{entry['id']} in {path.parent.name} (code {record['run']['git']})"
            assert "interval" in entry, f"{where} was judged under protocol v1: rerun it"
            try:
                judgement = _rejudge(entry, record["metrics"])
            except KeyError as missing:
                raise AssertionError(f"{where} records no {missing}, which its rule now takes: rerun it") from None
            assert entry["verdict"] == judgement.verdict, f"{where}: committed {entry['verdict']!r}, rule now {judgement.verdict!r}"
            # the entry keeps its mean and spread to 2 decimals, so an interval recomputed from them may differ in
            # its last digit: the note's words must match, its decimals need not
            assert _words(judgement.note) in _words(entry["note"]), \
                f"{where}: the rule's note is now {judgement.note!r}; committed {entry['note']!r}"
            judged += 1
    assert judged == len(claims.CLAIMS)


def test_every_committed_notebook_ran_at_its_current_cifar_budget():
    """A budget changed in profiles.py after a notebook ran leaves outputs from another experiment:
    rerun that notebook (`make book ONLY=NN`)."""
    profile = get_profile("cifar")
    for path in sorted(CIFAR.glob("*/metrics.json")):
        run = json.loads(path.read_text())["run"]
        assert run.get("protocol") == PROTOCOL_VERSION, f"{path.parent.name} ran under protocol {run.get('protocol', 1)}: rerun it"
        budget = json.loads(json.dumps(vars(profile.budget(path.parent.name, run["device"].split(":")[0]))))
        assert run["budget"] == budget, f"{path.parent.name} ran at {run['budget']}; profiles.py now says {budget}"


def test_a_protocol_v2_entry_is_rejudged_from_what_it_recorded():
    """The re-judging reads back what results.judged writes: the interval (JSON's None for no sd) and the regime."""
    results = Results("x", "smoke", torch.device("cpu"), seeds=(0, 1, 2))
    gain = {"mean": 2.5, "std": 0.4, "n": 3}
    results.judged("C4", gain, claims.c4_lrn_cifar(gain, claims.CONVERGED), unit="points", regime={"gain": claims.CONVERGED})
    results.judged("C8", Interval(1.6, 1.1, 2.1, 30.0, 10_000, "test images", "paired bootstrap (BCa)"),
                   claims.c8_ten_patches(Interval(1.6, 1.1, 2.1, 30.0, 10_000, "test images", "b"), False),
                   unit="points", regime={"converged": False})
    for entry in json.loads(json.dumps(results.claims)):
        assert _rejudge(entry, {}).verdict == entry["verdict"]


def protocol_time_table() -> list[list[str]]:
    """The rows of docs/protocol.md's table of estimated against measured minutes of the v2 run."""
    doc = (REPO / "docs" / "protocol.md").read_text()
    section = doc.split("### The v2 run's time, estimated and measured", 1)[1].split("\n\n", 2)[1]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines()[2:]]


def test_protocol_doc_times_are_reproduce_json_and_the_readme_agrees():
    """docs/protocol.md's measured minutes are reproduce.json's; the README's estimate is the doc's total."""
    seconds = json.loads((CIFAR / "reproduce.json").read_text())
    rows = protocol_time_table()
    for notebook, _estimate, measured, *_ in rows[:-1]:
        names = [name for name in seconds if name[:2] in re.findall(r"\b\d\d\b", notebook)]
        assert names, notebook
        assert int(measured) == round(sum(seconds[name] for name in names) / 60), notebook
    *_, (total, estimate, measured, *_) = rows
    assert total == "all" and int(measured) == round(sum(seconds.values()) / 60)
    readme = (REPO / "README.md").read_text()
    assert f"about {estimate.strip('~')} minutes in all" in readme
    assert ("the measured total above is longer still" in readme) == (int(measured) > int(estimate.strip("~")))
