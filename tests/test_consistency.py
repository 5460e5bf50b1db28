"""One book: the committed notebooks, claims.csv and the README come from the same results.

notebook 11's stored claims table must be claims.csv, and notebook 00's table of notebooks the
notebooks that exist; the README's generated block is checked in test_report.py.
"""

import html
import json
import re

import pandas as pd

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
