from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from PIL import Image

from alexnet_book import book
from alexnet_book.claims import claim_entry
from alexnet_book.report import write_claims
from alexnet_book.reproduce import notebooks
from alexnet_book.results import results_root

PROFILE = "smoke"


def png_bytes(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def executed_notebook(path: Path, heading: str, text: str) -> None:
    """A tiny notebook as papermill leaves it: a heading, and a code cell with a stream and a PNG output."""
    image = base64.b64encode(png_bytes("red")).decode()
    code = nbformat.v4.new_code_cell("print('hi'); figure", execution_count=1, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=text),
        nbformat.v4.new_output("display_data", data={"image/png": image, "text/plain": "<Figure>"}),
    ])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {heading}\n\nprose"), code])
    nbformat.write(nb, path)


@pytest.fixture
def smoke_run() -> tuple[Path, list[str]]:
    """results/smoke/ after a partial run of the book's first two notebooks: executed copies, a
    figure and metrics.json with a claim (for the second), the claims table, reproduce.json."""
    profile_dir = results_root() / PROFILE
    (profile_dir / "notebooks").mkdir(parents=True)
    stems = [path.stem for path in notebooks()[:2]]
    for stem in stems:
        executed_notebook(profile_dir / "notebooks" / f"{stem}.ipynb", f"{stem} title", f"stream of {stem}\n")
    figures = profile_dir / stems[1]
    figures.mkdir()
    (figures / "layer_times.png").write_bytes(png_bytes("blue"))
    claim = claim_entry("C6", 61.0, "reproduced", "within 5% of the paper", unit="M parameters")
    (figures / "metrics.json").write_text(json.dumps({"claims": [claim]}))
    write_claims(profile_dir)
    (profile_dir / "reproduce.json").write_text(json.dumps({stem: 1.5 for stem in stems}))
    return profile_dir, stems


class Links(HTMLParser):
    """Every href and src of a page."""

    def __init__(self):
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.targets += [value for name, value in attrs if name in ("href", "src") and value]


def links(page: Path) -> list[str]:
    parser = Links()
    parser.feed(page.read_text())
    return parser.targets


def test_every_notebook_has_a_page_with_its_outputs_embedded(smoke_run):
    profile_dir, stems = smoke_run
    book.main(["--profile", PROFILE])
    for stem in stems:
        page = (profile_dir / "html" / f"{stem}.html").read_text()
        assert f"stream of {stem}" in page and "data:image/png;base64," in page
        assert 'href="index.html"' in page


def test_every_file_the_index_links_exists(smoke_run):
    _, stems = smoke_run
    index = book.build(PROFILE)
    targets = links(index)
    assert targets, "the index links nothing"
    for target in targets:
        assert not target.startswith(("http:", "https:", "/")), target
        if target.startswith("#"):  # a place on the page itself
            assert f'id="{target[1:]}"' in index.read_text(), f"index links {target}, which has no anchor"
            continue
        assert (index.parent / target).resolve().is_file(), f"index links {target}, which does not exist"
    assert f"../{stems[1]}/layer_times.png" in targets


def test_index_follows_the_book_and_shows_the_claims(smoke_run):
    _, stems = smoke_run
    text = book.build(PROFILE).read_text()
    book_order = [path.stem for path in notebooks()]
    chapters = text.index('<ol class="book">')
    positions = [text.index(stem, chapters) for stem in book_order]
    assert positions == sorted(positions)
    assert "not run in this profile yet" in text  # the rest of the book is listed, unlinked
    assert "<table>" in text and "C6" in text and "61 M parameters" in text
    assert f'<a href="{stems[1]}.html">{stems[1]}</a>' in text  # the claim links the page, not the .ipynb
    assert ".ipynb" not in text


def test_no_executed_notebooks_says_how_to_make_them():
    with pytest.raises(SystemExit, match="make reproduce PROFILE=smoke"):
        book.build(PROFILE)


def test_cifar_without_executed_copies_renders_the_committed_notebooks():
    index = book.build("cifar")  # results/ is an empty temporary folder here
    pages = {path.stem for path in index.parent.glob("*.html")} - {"index"}
    assert pages == {path.stem for path in notebooks()}
    assert "img" in (index.parent / "01_architecture.html").read_text()  # the committed outputs are embedded


def test_the_claims_table_gives_each_rule_once_below_it(smoke_run):
    profile_dir, stems = smoke_run
    claim = claim_entry("C4", 1.2, "partly", "within 5% of the paper", unit="points")  # the rule C6 has too
    (profile_dir / stems[0]).mkdir()
    (profile_dir / stems[0] / "metrics.json").write_text(json.dumps({"claims": [claim]}))
    text = book.build(PROFILE).read_text()
    assert text.count("within 5% of the paper") == 1 and text.count("no notebook has recorded it yet") == 1
    number = re.search(r'<li id="rule-(\d+)">within 5% of the paper</li>', text).group(1)
    assert text.count(f'href="#rule-{number}"') == 2  # C4's row and C6's


def test_progress_bars_are_plain_text_and_a_warning_keeps_its_box():
    bar = "seed 0:  50%|█████     | 1/2 [00:01<00:01, 1.0s/it]\rseed 0: 100%|██████████| 2/2 [00:02<00:00, 1.0s/it]\n"
    warning = "/x/engine.py:3: UserWarning: slow\n  warnings.warn('slow')\n"
    cells = [nbformat.v4.new_code_cell("fit()", outputs=[nbformat.v4.new_output("stream", name="stderr", text=text)])
             for text in (bar, "training: 17.5 img/s\n", warning + bar)]
    out = book.progress_as_text(nbformat.v4.new_notebook(cells=cells)).cells
    streams = [[(o.name, o.text) for o in cell.outputs] for cell in out]
    last = "seed 0: 100%|██████████| 2/2 [00:02<00:00, 1.0s/it]\n"
    assert streams[0] == [("stdout", last)]  # one line: the bar's last state
    assert streams[1] == [("stdout", "training: 17.5 img/s\n")]  # the CLI's report is no error either
    assert streams[2] == [("stdout", last), ("stderr", warning)]
