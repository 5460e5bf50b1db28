"""`make html`: a profile's executed notebooks as a static site under results/<profile>/html/.

Each executed notebook (results/<profile>/notebooks/) becomes a page with nbconvert's HTML
exporter, which embeds PNG outputs as data URIs, so a page needs no other file. index.html lists
the book in order with each notebook's saved figures (linked from results/<profile>/<notebook>/,
never copied) and shows the claims table. nbconvert is already installed with jupyterlab;
jupyter-book would add a Sphinx stack for the same pages.
"""

from __future__ import annotations

import argparse
import html
import json
import re
from pathlib import Path

from .profiles import PROFILES
from .report import collect_claims, to_markdown
from .reproduce import notebooks, render_terminal
from .results import results_root, shown

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; color: #222; max-width: 1140px; margin: 2em auto; padding: 0 1em; }
h1 { margin-bottom: 0; } header p { color: #555; margin-top: .3em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.8em; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } tbody tr:nth-child(even) { background: #fafafa; }
td:nth-child(1), td:nth-child(6) { white-space: nowrap; } td:nth-child(7) { color: #666; font-size: 12px; }
td.reproduced { background: #e3f4e1; } td.partly { background: #fdf3d7; } td.not-reproduced { background: #fbe3e1; }
td[class^="not-measured"] { color: #999; }
ol.book li { margin: .7em 0; } ol.rules { font-size: 13px; color: #444; } .missing { color: #888; } .time { color: #888; font-size: 13px; }
.figures img { height: 110px; margin: 4px 6px 0 0; border: 1px solid #ddd; }
"""
NAV_STYLE = "font: 14px system-ui, sans-serif; padding: 8px 16px; background: #f3f3f3; border-bottom: 1px solid #ddd"


def title(notebook: dict, fallback: str) -> str:
    """The first markdown heading of the notebook, without its #s."""
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            for line in cell["source"].splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


def nav_bar(stems: list[str], index: int) -> str:
    links = ['<a href="index.html">alexnet-book</a>']
    if index > 0:
        links.append(f'<a href="{stems[index - 1]}.html">&larr; {stems[index - 1]}</a>')
    if index < len(stems) - 1:
        links.append(f'<a href="{stems[index + 1]}.html">{stems[index + 1]} &rarr;</a>')
    return f'<nav style="{NAV_STYLE}">{" &middot; ".join(links)}</nav>'


def render_page(executed: Path, nav: str) -> str:
    """One notebook as a full HTML page, outputs embedded, progress bars as plain text, with the nav bar at the top."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = progress_as_text(nbformat.read(executed, as_version=4))
    page, _ = HTMLExporter(template_name="lab").from_notebook_node(notebook)
    return re.sub(r"<body[^>]*>", lambda body: body.group(0) + nav, page, count=1)


# A tqdm bar's line: "desc: 100%|█████| 3/3 [00:10<00:00, ...]". tqdm writes to stderr, as does the training CLI
# (notebooks 08 and 12) its report, and the lab template draws stderr as a red error box: a page of finished bars
# looked like a page of failures. Only a stream that warns or fails (ALARM) keeps its box, less its bars.
PROGRESS = re.compile(r"\|\s*[\d.]+\w*/[\d.?]+\w* \[")
ALARM = re.compile(r"Warning|Error|Exception|Traceback")


def progress_as_text(notebook):
    """The notebook with its stderr streams as a terminal left them (reproduce.render_terminal: bars in their
    last state) and as plain stdout text, except for what an ALARM stream holds besides its bars."""
    from nbformat.v4 import new_output

    for cell in notebook.cells:
        outputs = []
        for output in cell.get("outputs", []):
            if output.output_type != "stream" or output.name != "stderr":
                outputs.append(output)
                continue
            text = render_terminal(output.text)
            alarm = ALARM.search(text)
            lines = text.splitlines(keepends=True)
            plain = "".join(line for line in lines if not alarm or PROGRESS.search(line))
            kept = "".join(line for line in lines if alarm and not PROGRESS.search(line))
            outputs += [new_output("stream", name=name, text=part) for name, part in (("stdout", plain), ("stderr", kept))
                        if part]
        cell["outputs"] = outputs
    return notebook


def claims_table(profile_dir: Path, pages: set[str]) -> str:
    """The claims table (collect_claims, what claims.md holds) as HTML, each rule's text given once in a numbered
    list below it (most rules serve several rows); notebook links point at the pages."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    table = collect_claims(profile_dir)
    rules = list(dict.fromkeys(table["rule"]))
    table["rule"] = [f"[rule {rules.index(rule) + 1}](#rule-{rules.index(rule) + 1})" for rule in table["rule"]]
    html_table = markdown2html_mistune(to_markdown(table))

    def relink(link: re.Match) -> str:  # to_markdown links the source notebooks; here the page, if rendered
        stem = link.group(1)
        return f'<a href="{stem}.html">{stem}</a>' if stem in pages else stem

    html_table = re.sub(r'<a href="[^"]*?([^"/]+)\.ipynb">[^<]*</a>', relink, html_table)
    html_table = re.sub(r"<td>(reproduced|partly|not reproduced|not measured[^<]*)</td>",  # a verdict's colour
                        lambda v: f'<td class="{v.group(1).replace(" ", "-")}">{v.group(1)}</td>', html_table)
    legend = "".join(f'<li id="rule-{n}">{html.escape(rule)}</li>' for n, rule in enumerate(rules, start=1))
    return f'{html_table}\n<h3>The rules</h3>\n<ol class="rules">{legend}</ol>'


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def chapter(stem: str, profile_dir: Path, titles: dict[str, str], seconds: dict[str, float]) -> str:
    """One item of the index: the page link, its run time, and the figures the notebook saved."""
    if stem not in titles:
        return f'<li class="missing">{stem}: not run in this profile yet</li>'
    time = f' <span class="time">{duration(seconds[stem])}</span>' if stem in seconds else ""
    figures = "".join(f'<a href="../{stem}/{png.name}"><img src="../{stem}/{png.name}" alt="{png.stem}"></a>'
                      for png in sorted((profile_dir / stem).glob("*.png")))
    return (f'<li><a href="{stem}.html">{html.escape(titles[stem])}</a>{time}'
            f'<div class="figures">{figures}</div></li>')


def render_index(profile: str, profile_dir: Path, stems: list[str], titles: dict[str, str]) -> str:
    timing = profile_dir / "reproduce.json"
    seconds = json.loads(timing.read_text()) if timing.exists() else {}
    items = "\n".join(chapter(stem, profile_dir, titles, seconds) for stem in stems)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>alexnet-book: {profile}</title><style>{STYLE}</style></head>
<body>
<header><h1>alexnet-book</h1>
<p>A reproducible companion to Krizhevsky, Sutskever &amp; Hinton (2012), <i>ImageNet Classification with Deep
Convolutional Neural Networks</i>. Profile <b>{profile}</b>: {html.escape(PROFILES[profile].description)}.</p></header>
<h2>Claims</h2>
{claims_table(profile_dir, set(titles))}
<h2>Notebooks</h2>
<ol class="book">
{items}
</ol>
</body></html>
"""


def build(profile: str) -> Path:
    """Render results/<profile>/notebooks/ into results/<profile>/html/; returns the index page. With no
    executed copies, the cifar profile renders the committed notebooks/, which carry its outputs."""
    import nbformat

    profile_dir = results_root() / profile
    executed = {path.stem: path for path in sorted((profile_dir / "notebooks").glob("*.ipynb"))}
    if not executed and profile == "cifar":  # the committed notebooks carry the cifar outputs: no 4-hour run first
        executed = {path.stem: path for path in notebooks()}
    stems = [source.stem for source in notebooks()]
    rendered = [stem for stem in stems if stem in executed]
    if not rendered:
        raise SystemExit(f"no executed notebooks in {profile_dir / 'notebooks'}; run `make reproduce PROFILE={profile}`")
    out = profile_dir / "html"
    out.mkdir(parents=True, exist_ok=True)
    titles = {}
    for index, stem in enumerate(rendered):
        titles[stem] = title(nbformat.read(executed[stem], as_version=4), stem)
        (out / f"{stem}.html").write_text(render_page(executed[stem], nav_bar(rendered, index)))
    (out / "index.html").write_text(render_index(profile, profile_dir, stems, titles))
    return out / "index.html"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="cifar", choices=list(PROFILES))
    args = parser.parse_args(argv)
    print(f"wrote {shown(build(args.profile))}")


if __name__ == "__main__":
    main()
