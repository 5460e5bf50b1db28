from __future__ import annotations

import base64
import io
import json
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
