import json
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from alexnet_book import reproduce


def tiny_notebook(path, body):
    nb = new_notebook(cells=[new_code_cell("PROFILE = None", metadata={"tags": ["parameters"]}), new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_reproduce_runs_notebooks_in_order_and_builds_claims(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "NOTEBOOKS", tmp_path)
    tiny_notebook(tmp_path / "00_first.ipynb", "print('profile is', PROFILE)")
    tiny_notebook(tmp_path / "01_second.ipynb", "import alexnet_book as ab\nrun = ab.setup('00_setup', PROFILE)\n"
                  "run.results.claim('C6', 1, 'reproduced', 'test')\nrun.results.save()")
    reproduce.main(["--profile", "smoke", "--book"])
    out = tmp_path / "results" / "smoke"
    executed = nbformat.read(out / "notebooks" / "00_first.ipynb", as_version=4)
    assert "profile is smoke" in executed.cells[-1].outputs[0]["text"]
    assert set(json.loads((out / "reproduce.json").read_text())) == {"00_first", "01_second"}
    assert "C6" in (out / "claims.csv").read_text()
    # --book copies outputs back without papermill's injected PROFILE cell or its timestamps
    book = nbformat.read(tmp_path / "00_first.ipynb", as_version=4)
    assert len(book.cells) == 2 and "profile is smoke" in book.cells[-1].outputs[0]["text"]
    assert "papermill" not in book.metadata and all("papermill" not in c.metadata for c in book.cells)


def test_failing_notebook_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "NOTEBOOKS", tmp_path)
    tiny_notebook(tmp_path / "00_broken.ipynb", "raise RuntimeError('boom')")
    tiny_notebook(tmp_path / "01_never.ipynb", "print('not reached')")
    with pytest.raises(SystemExit, match="notebook 00_broken.ipynb failed"):
        reproduce.main(["--profile", "smoke"])
    assert not (tmp_path / "results" / "smoke" / "notebooks" / "01_never.ipynb").exists()


def test_a_notebook_resumed_after_an_unfinished_run_counts_both_runs(tmp_path, monkeypatch):
    """A run killed outright leaves its time so far (written while it ran); one that fails writes it at once; the
    next run that finishes adds them and clears them."""
    ledger, source = tmp_path / "unfinished.json", tmp_path / "05_x.ipynb"
    monkeypatch.setattr(reproduce, "UNFINISHED_EVERY", 0.05)

    def killed(*args):  # the ledger as a run killed after about 0.3 s leaves it
        time.sleep(0.3)
        assert json.loads(ledger.read_text())["05_x"] >= 0.2  # written while the notebook ran
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce, "run_notebook", killed)
    with pytest.raises(KeyboardInterrupt):
        reproduce.run_counting_unfinished(source, tmp_path / "out.ipynb", "smoke", ledger)
    first = json.loads(ledger.read_text())["05_x"]
    assert first >= 0.3
    monkeypatch.setattr(reproduce, "run_notebook", lambda *args: 10.0)
    assert reproduce.run_counting_unfinished(source, tmp_path / "out.ipynb", "smoke", ledger) == pytest.approx(first + 10.0)
    assert json.loads(ledger.read_text()) == {}
    assert reproduce.run_counting_unfinished(source, tmp_path / "out.ipynb", "smoke", ledger) == 10.0  # nothing carried


def test_only_selects_by_prefix_and_rejects_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(reproduce, "NOTEBOOKS", tmp_path)
    for name in ("00_a", "01_b", "02_c"):
        tiny_notebook(tmp_path / f"{name}.ipynb", "")
    assert [p.stem for p in reproduce.notebooks(["01", "02"])] == ["01_b", "02_c"]
    with pytest.raises(SystemExit, match="no notebook matches"):
        reproduce.notebooks(["99"])


def test_book_copies_keep_only_what_a_terminal_shows_of_progress_bars():
    import io

    from nbformat.v4 import new_code_cell, new_notebook, new_output
    from tqdm import tqdm

    stream = io.StringIO()
    print("starting", file=stream)
    for epoch in tqdm(range(3), desc="run", file=stream, ascii=True):
        for _ in tqdm(range(50), desc=f"epoch {epoch}", file=stream, leave=False, ascii=True, mininterval=0):
            pass
    print("done", file=stream)
    raw = stream.getvalue()
    pieces = [new_output("stream", name="stderr", text=raw[i : i + 40]) for i in range(0, len(raw), 40)]
    cell = new_code_cell(outputs=[*pieces, new_output("stream", name="stdout", text="result\n")])
    outputs = reproduce.terminal_streams(new_notebook(cells=[cell])).cells[0].outputs
    assert [o.name for o in outputs] == ["stderr", "stdout"]  # one output per stream, in order
    lines = outputs[0].text.splitlines()
    assert lines[0] == "starting" and lines[-1] == "done" and len(lines) == 3, lines
    assert lines[1].startswith("run: 100%") and "3/3" in lines[1]  # the outer bar's final state; inner bars cleared
    assert raw.count("epoch") > 100 and "epoch" not in outputs[0].text


def test_render_terminal_applies_carriage_returns_and_cursor_up():
    assert reproduce.render_terminal("a\rbc\n") == "bc\n"
    assert reproduce.render_terminal("top\n\rinner\x1b[A\rTOP\n\r     \r") == "TOP\n"
    assert reproduce.render_terminal("\x1b[31mred\x1b[0m\n") == "red\n"
    assert reproduce.render_terminal("\r\n") == ""


def test_nbconvert_alone_keeps_every_update_of_an_outer_bar():
    """Why terminal_streams is not nbconvert's CoalesceStreamsPreprocessor: its carriage-return rule
    deletes tqdm's cursor-up moves with the text before them, so a nested bar leaves one line per
    update of the outer bar."""
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    text = "run: 0%\n\rinner 50%\x1b[A\rrun: 50%\n\rinner 99%\x1b[A\rrun: 100%\n"
    nb = new_notebook(cells=[new_code_cell(outputs=[new_output("stream", name="stderr", text=text)])])
    nbconvert_text = CoalesceStreamsPreprocessor().preprocess(nb, {})[0].cells[0].outputs[0].text
    assert nbconvert_text == "run: 0%\nrun: 50%\nrun: 100%\n"
    assert reproduce.render_terminal(text) == "run: 100%\ninner 99%\n"  # one line per bar


def test_a_notebook_run_keeps_the_kernels_tcp_warning_out_of_the_console(tmp_path):
    """papermill's kernel logs "Kernel is running over TCP without encryption" to the console of every
    `make reproduce` unless reproduce.KERNEL_ARGUMENTS quiets it; the notebook still runs."""
    import subprocess
    import sys

    import nbformat

    source = tmp_path / "tiny.ipynb"
    parameters = nbformat.v4.new_code_cell("PROFILE = None", metadata={"tags": ["parameters"]})
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
              "language_info": {"name": "python"}}
    notebook = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell("print(6 * 7)")], metadata=kernel)
    nbformat.write(notebook, source)
    code = ("import sys; from pathlib import Path; from alexnet_book.reproduce import run_notebook; "
            "run_notebook(Path(sys.argv[1]), Path(sys.argv[2]), 'smoke')")
    done = subprocess.run([sys.executable, "-c", code, str(source), str(tmp_path / "out.ipynb")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "without encryption" not in done.stderr + done.stdout
    assert "42" in (tmp_path / "out.ipynb").read_text()
