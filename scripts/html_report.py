#!/usr/bin/python3
"""A self-contained HTML report of one or more study outputs, with plots.

    scripts/html_report.py --out OUTDIR [--claims CLAIMS.json --bin build/efficientllm] DIR...

Each DIR holds the report.json of one job (a study). Writes OUTDIR/report.html, which needs no
network (the plots are embedded as SVG, the tables sort on a click of their header) and the same
plots as OUTDIR/plots/*.svg and *.png:
- per study, the training loss per step and the validation loss of every run;
- per study, one bar chart per metric (validation perplexity, step latency AL, throughput AT,
  peak resident memory, AMU, PCU, energy per token AEC), configurations over seeds as mean with
  the standard deviation as error bar (runs named `...,seed=S` are one configuration);
- per study, the memory split per rank (parameters, gradients, optimizer, activations, and the
  rest of the resident set) of each configuration's first seed;
- with --claims, the claim table of `efficientllm report --claims` (docs/REPRODUCE.md).
Plotting is matplotlib's (Debian's python3-matplotlib); nothing here is downloaded.
"""
import argparse
import html
import io
import json
import statistics
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a cluster node
import matplotlib.pyplot as plt  # noqa: E402

METRICS = [  # (title, unit, pointer into a run, scale)
    ("validation perplexity", "", ("quality", "val_perplexity_final"), 1),
    ("AL: step latency (mean)", "ms", ("latency", "step", "mean"), 1e3),
    ("AT: throughput", "tokens/s", ("throughput", "tokens_per_s"), 1),
    ("peak resident memory (max rank)", "MiB", ("memory", "rss_hwm_bytes", "max"), 1 / 2**20),
    ("AMU (mean rank)", "%", ("memory", "amu", "mean"), 100),
    ("PCU: busy fraction", "%", ("compute", "pcu_busy_fraction"), 100),
    ("AEC: energy per token", "J/token", ("energy", "j_per_token"), 1),
]
ARENAS = ["parameters", "gradients", "optimizer", "activations"]


def fail(message):
    sys.exit(f"html_report.py: {message}")


def load_report(directory):
    path = Path(directory) / "report.json"
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")
    if not isinstance(report, dict) or not isinstance(report.get("runs"), list):
        fail(f"{path}: not shaped like an efficientllm report (no runs)")
    return report


def lookup(run, keys):
    value = run
    for k in keys:
        if not isinstance(value, dict) or k not in value:
            return None
        value = value[k]
    return value if isinstance(value, (int, float)) else None


def group_of(name):
    """The configuration of a run: its name without the seed=S part."""
    return ",".join(p for p in name.split(",") if not p.startswith("seed=")) or name


def groups(report):
    out = {}
    for run in report["runs"]:
        out.setdefault(group_of(run.get("name", "?")), []).append(run)
    return out


def svg_and_png(fig, stem, plots_dir):
    """The figure as inline SVG text, also written to plots/STEM.svg and .png."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    fig.savefig(plots_dir / f"{stem}.svg", bbox_inches="tight")
    fig.savefig(plots_dir / f"{stem}.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog: the SVG is inlined in HTML


def loss_plot(study, report, plots_dir):
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for run in report["runs"]:
        losses = run.get("loss_per_step") or []
        if losses:
            line, = ax.plot(range(1, len(losses) + 1), losses, lw=1, label=run["name"])
            val = run.get("validation") or []
            ax.plot([v["step"] for v in val], [v["loss"] for v in val], "o", ms=4, color=line.get_color())
    ax.set_xlabel("step (series downsampled to the report's bound)")
    ax.set_ylabel("loss (lines: training; dots: validation)")
    ax.set_title(f"{study}: loss")
    if len(report["runs"]) <= 12:
        ax.legend(fontsize=7)
    return svg_and_png(fig, f"{study}_loss", plots_dir)


def metric_plots(study, report, plots_dir):
    svgs = []
    configs = groups(report)
    for i, (title, unit, keys, scale) in enumerate(METRICS):
        names, means, sds = [], [], []
        for name, runs in configs.items():
            vals = [v * scale for v in (lookup(r, keys) for r in runs) if v is not None]
            if vals:
                names.append(name)
                means.append(statistics.mean(vals))
                sds.append(statistics.stdev(vals) if len(vals) > 1 else 0)
        if not names:
            continue
        fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(names) + 2), 3))
        ax.bar(range(len(names)), means, yerr=sds, capsize=3, color="#4c78a8")
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        estimated = keys[0] == "energy" and any((r.get("energy") or {}).get("estimated") for r in report["runs"])
        ax.set_title(f"{study}: {title}" + (" (estimate)" if estimated else ""), fontsize=9)
        ax.set_ylabel(unit)
        svgs.append(svg_and_png(fig, f"{study}_metric{i}", plots_dir))
    return svgs


def memory_plot(study, report, plots_dir):
    bars = []  # (label, parameters, gradients, optimizer, activations, rest) in MiB
    for name, runs in groups(report).items():
        for rank in runs[0].get("ranks") or []:
            arena = rank.get("arena_bytes") or {}
            parts = [arena.get(k, 0) / 2**20 for k in ARENAS]
            rss = (rank.get("rss_hwm_bytes") or 0) / 2**20
            bars.append((f"{name} r{rank.get('rank', '?')}", *parts, max(0.0, rss - sum(parts))))
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(bars) + 2), 3.2))
    bottom = [0.0] * len(bars)
    for j, part in enumerate(ARENAS + ["rest of the resident set"]):
        heights = [b[j + 1] for b in bars]
        ax.bar(range(len(bars)), heights, bottom=bottom, label=part)
        bottom = [x + h for x, h in zip(bottom, heights)]
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("MiB (peak resident set split)")
    ax.set_title(f"{study}: memory per rank (first seed)", fontsize=9)
    ax.legend(fontsize=7)
    return svg_and_png(fig, f"{study}_memory", plots_dir)


def runs_table(report):
    head = ["run", "val ppl", "step ms", "tokens/s", "peak RSS MiB", "AMU %", "PCU %", "J/token", "status"]
    rows = []
    for run in report["runs"]:
        cells = [run.get("name", "?")]
        for _, _, keys, scale in METRICS:
            v = lookup(run, keys)
            cells.append("" if v is None else f"{v * scale:.4g}")
        cells.append(str(run.get("status", "")))
        rows.append(cells)
    return table_html(head, rows)


def is_number(cell):
    try:
        float(cell)
        return True
    except (TypeError, ValueError):
        return False


def cell_html(cell):
    attribute = ' class="num"' if is_number(cell) else ""
    return f"<td{attribute}>{html.escape(str(cell))}</td>"


def table_html(head, rows):
    out = ['<table class="sortable"><thead><tr>']
    out += [f"<th>{html.escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>" + "".join(cell_html(c) for c in r) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def claim_table(claims, binary, dirs):
    command = [binary, "report", "--claims", claims, "--format", "json", *dirs]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"{' '.join(command)}: {done.stderr.strip()}")
    results = json.loads(done.stdout)
    head = ["claim", "source", "paper", "comparison (metric)", "ours", "verdict", "why"]
    rows = [[c["statement"], c["source"], c["paper"], f'{c["comparison"]} ({c["metric"]})', c["ours"], c["verdict"],
             c["reason"]] for c in results]
    return table_html(head, rows)


SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const asc = th.dataset.order !== 'asc';
  th.dataset.order = asc ? 'asc' : 'desc';
  const key = tr => { const t = tr.cells[col].textContent; const n = parseFloat(t); return isNaN(n) ? t : n; };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); }).forEach(tr => body.appendChild(tr));
}));
"""
STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1200px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; }
th { background: #eee; cursor: pointer; }
.plots svg { max-width: 100%; height: auto; margin: 0.5em; }
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="output directory (report.html, plots/)")
    parser.add_argument("--claims", help="a claims file (jobs/paper/claims.json) for the claim table")
    parser.add_argument("--bin", default=str(Path(__file__).resolve().parent.parent / "build" / "efficientllm"),
                        help="the efficientllm binary that judges the claims")
    parser.add_argument("dirs", nargs="+", help="output directories of study jobs (each with report.json)")
    args = parser.parse_args()
    out = Path(args.out)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    body = ["<h1>efficientllm report</h1>"]
    if args.claims:
        body += ["<h2>The paper's claims</h2>", claim_table(args.claims, args.bin, args.dirs)]
    for d in args.dirs:
        report = load_report(d)
        job = report.get("job") or {}
        study = Path(str(job.get("file") or d)).stem
        provenance = report.get("provenance") or {}
        body.append(f"<h2>{html.escape(study)}: {html.escape(str(job.get('name', '')))}</h2>")
        body.append(f"<p>{html.escape(str(job.get('description', '')))}</p>")
        body.append("<p><small>" + html.escape(", ".join(f"{k}: {v}" for k, v in provenance.items()
                                                          if isinstance(v, (str, int, float)))) + "</small></p>")
        body.append(runs_table(report))
        figures = [loss_plot(study, report, plots), *metric_plots(study, report, plots),
                   memory_plot(study, report, plots)]
        body.append('<div class="plots">' + "".join(f for f in figures if f) + "</div>")
    page = ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>efficientllm report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}<script>{SORT_SCRIPT}</script></body></html>")
    (out / "report.html").write_text(page)
    print(out / "report.html")


if __name__ == "__main__":
    main()
