"""`make reproduce`: run every notebook headless with papermill, in order, then build the claims table.

Executed copies go to results/<profile>/notebooks/; the sources in notebooks/ are never touched
(`--book` copies a finished run back over them: `make book`). Wall times per notebook go to
results/<profile>/reproduce.json: a notebook's time is the sum of its runs since it last finished, so one that was
interrupted and then resumed from its checkpoints counts both runs (reproduce-unfinished.json keeps the first).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from pathlib import Path

from .profiles import PROFILES
from .report import to_markdown, write_claims
from .results import REPO, results_root, shown

NOTEBOOKS = REPO / "notebooks"
TERMINAL_TOKENS = re.compile(r"\r|\n|\x1b\[A|\x1b\[[0-9;]*[A-Za-z]|[^\r\n\x1b]+")


def notebooks(only: list[str] | None = None) -> list[Path]:
    """The book's notebooks in order (NN_name.ipynb), or those whose names start with one of `only`."""
    found = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        found = [p for p in found if any(p.stem.startswith(o) for o in only)]
        if not found:
            raise SystemExit(f"no notebook matches {only}; notebooks: {', '.join(p.stem for p in sorted(NOTEBOOKS.glob('*.ipynb')))}")
    return found


def measured_times():
    """Seconds per notebook in each profile, from the last `make reproduce` of each (results/*/reproduce.json)."""
    import pandas as pd

    times = {path.parent.name: json.loads(path.read_text()) for path in sorted(results_root().glob("*/reproduce.json"))}
    table = pd.DataFrame(times, index=[p.stem for p in notebooks()]).rename_axis("notebook")
    if not table.empty:
        table.loc["total"] = table.sum()
    return table


# The kernel's own log goes to this console. At its default level, every kernel started over TCP (how
# papermill starts one) warns "Kernel is running over TCP without encryption": the kernel only listens on
# this machine's loopback, so the warning says nothing to a `make reproduce` user. Its errors still show.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


def run_notebook(source: Path, output: Path, profile: str) -> float:
    import papermill

    tic = time.perf_counter()
    papermill.execute_notebook(str(source), str(output), parameters={"PROFILE": profile}, cwd=str(NOTEBOOKS),
                               kernel_name="python3", progress_bar=False, extra_arguments=KERNEL_ARGUMENTS)
    return time.perf_counter() - tic


UNFINISHED_EVERY = 30  # seconds between writes of a running notebook's time so far


def run_counting_unfinished(source: Path, output: Path, profile: str, unfinished_file: Path) -> float:
    """run_notebook's seconds plus those of this notebook's earlier runs that did not finish (failed, stopped or
    killed, then resumed from their checkpoints). A running notebook's time so far is written to
    `unfinished_file` every UNFINISHED_EVERY seconds, so a run killed outright loses at most that much."""
    unfinished = json.loads(unfinished_file.read_text()) if unfinished_file.exists() else {}
    carried, tic, finished = unfinished.get(source.stem, 0.0), time.perf_counter(), threading.Event()

    def save():
        unfinished_file.write_text(json.dumps(unfinished, indent=2) + "\n")

    def write_so_far():
        unfinished[source.stem] = round(carried + time.perf_counter() - tic, 1)
        save()

    def every_while_running():
        while not finished.wait(UNFINISHED_EVERY):
            write_so_far()

    writer = threading.Thread(target=every_while_running, daemon=True)
    writer.start()
    seconds = None
    try:
        seconds = run_notebook(source, output, profile)
    finally:
        finished.set()
        writer.join()
        if seconds is None:  # failed or stopped (Ctrl-C): its time so far counts when the notebook next finishes
            write_so_far()
    unfinished.pop(source.stem, None)
    save()
    if carried:
        print(f"[{profile}] {source.name}: {carried:.0f} s of earlier unfinished runs counted", flush=True)
    return carried + seconds


def to_book(executed: Path, source: Path) -> None:
    """Copy an executed notebook over its source without papermill's injected PROFILE cell or timestamps.

    The injected cell would pin the profile, so nbval (which runs the source under
    ALEXNET_BOOK_PROFILE=smoke) would run the cifar budget instead.
    """
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nb.metadata.pop("papermill", None)
    nbformat.write(terminal_streams(nb), source)


def terminal_streams(nb):
    """The notebook with one stream output per cell and name, rendered as a terminal shows it
    (render_terminal); empty ones dropped. Not nbconvert's CoalesceStreamsPreprocessor: its carriage-
    return rule also deletes tqdm's cursor-up moves, so a nested bar left every outer update (a test shows it)."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for output in cell.outputs:
            if output.output_type == "stream" and merged and merged[-1].output_type == "stream" \
                    and merged[-1].name == output.name:
                merged[-1].text += output.text
            else:
                merged.append(output)
        for output in merged:
            if output.output_type == "stream":
                output.text = render_terminal(output.text)
        cell.outputs = [o for o in merged if o.output_type != "stream" or o.text]
    return nb


def render_terminal(text: str) -> str:
    """What a terminal shows after printing `text`: carriage returns and tqdm's cursor-up moves
    applied, so a progress bar's thousand updates leave only its last state. Blank lines go."""
    lines, row, col = [""], 0, 0
    for token in TERMINAL_TOKENS.findall(text):
        if token == "\n":
            row, col = row + 1, 0
            lines += [""] * (row + 1 - len(lines))
        elif token == "\r":
            col = 0
        elif token == "\x1b[A":
            row = max(row - 1, 0)
        elif not token.startswith("\x1b"):  # other escape codes (colours) are dropped
            line = lines[row]
            lines[row] = line[:col] + token + line[col + len(token):]
            col += len(token)
    kept = [line.rstrip() for line in lines if line.strip()]
    return "\n".join(kept) + "\n" if kept else ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cifar", choices=list(PROFILES))
    parser.add_argument("--only", nargs="*", help="run only notebooks whose names start with these, e.g. 02 03")
    parser.add_argument("--book", action="store_true", help="copy the executed notebooks over notebooks/ afterwards")
    args = parser.parse_args(argv)

    out = results_root() / args.profile
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    timing_file = out / "reproduce.json"
    timings = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    for source in notebooks(args.only):
        print(f"[{args.profile}] {source.name} ...", flush=True)
        executed = out / "notebooks" / source.name
        try:
            seconds = run_counting_unfinished(source, executed, args.profile, out / "reproduce-unfinished.json")
        except Exception as error:
            sys.exit(f"notebook {source.name} failed ({type(error).__name__}); see {shown(executed)}\n{error}")
        timings[source.stem] = round(seconds, 1)
        timing_file.write_text(json.dumps(timings, indent=2) + "\n")
        print(f"[{args.profile}] {source.name} done in {seconds:.0f} s", flush=True)
        if args.book:
            to_book(executed, source)
    table = write_claims(out)
    print(to_markdown(table))
    print(f"total notebook time {sum(timings.values()):.0f} s; claims in {shown(out / 'claims.csv')}")


if __name__ == "__main__":
    main()
