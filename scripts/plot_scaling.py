#!/usr/bin/python3
"""Combines the reports of a scaling study into one table and one plot.

    scripts/plot_scaling.py --mode strong|weak --out PREFIX DIR...

Each DIR holds the report.json of one size (scripts/scaling.sh writes them). Writes PREFIX.md (the
table, also printed) and PREFIX.png: tokens/s, mean step latency, communication share and scaling
efficiency against the number of ranks, with the ideal lines. Runs are matched across sizes by
name, so a job with several runs gives one line per run.

Efficiency is tokens/s per rank relative to the smallest size: under strong scaling (fixed global
batch) ideal tokens/s grow with the ranks and the step time shrinks; under weak scaling (fixed
per-rank batch) ideal tokens/s grow with the ranks and the step time stays flat.
"""
import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a cluster node
import matplotlib.pyplot as plt  # noqa: E402


def load(dirs):
    """One row per (run, size), read from each DIR/report.json."""
    rows = []
    for d in dirs:
        path = Path(d) / "report.json"
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            sys.exit(f"plot_scaling.py: {path}: {e}")
        for run in report["runs"]:
            rows.append({
                "run": run["name"],
                "ranks": report["world"]["ranks"],
                "hosts": len(report["world"]["hosts"]),
                "batch": run["config"]["training"]["batch_size"],
                "tokens_per_s": run["throughput"]["tokens_per_s"],
                "step_s": run["latency"]["step"]["mean"],
                "comm_share": run["latency"]["communication_share"],
                "dir": str(d),
            })
    if not rows:
        sys.exit("plot_scaling.py: the reports hold no finished run")
    return rows


def check_batches(series, mode):
    """Strong scaling keeps the global batch; weak scaling keeps the batch per rank."""
    key = (lambda r: r["batch"]) if mode == "strong" else (lambda r: r["batch"] / r["ranks"])
    what = "global batch" if mode == "strong" else "batch per rank"
    for run, rows in series.items():
        values = {key(r) for r in rows}
        if len(values) > 1:
            found = ", ".join(f"{r['dir']}: {key(r):g}" for r in rows)
            sys.exit(f"plot_scaling.py: {mode} scaling needs one {what}, but run \"{run}\" has {found}")


def add_ideal(rows, mode):
    """Ideal figures and efficiency against the smallest size of the same run."""
    base = rows[0]
    for r in rows:
        factor = r["ranks"] / base["ranks"]
        r["ideal_tokens_per_s"] = base["tokens_per_s"] * factor
        r["ideal_step_s"] = base["step_s"] / factor if mode == "strong" else base["step_s"]
        r["efficiency"] = r["tokens_per_s"] / r["ideal_tokens_per_s"]


def table(series, mode):
    lines = [f"{mode.capitalize()} scaling (efficiency: tokens/s per rank relative to the smallest size)", "",
             "| run | ranks | hosts | global batch | tokens/s | ideal tokens/s | step ms (mean) | ideal step ms "
             "| comm % | efficiency |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for run, rows in series.items():
        for r in rows:
            lines.append(f"| {run} | {r['ranks']} | {r['hosts']} | {r['batch']} | {r['tokens_per_s']:.0f} "
                         f"| {r['ideal_tokens_per_s']:.0f} | {r['step_s'] * 1e3:.1f} | {r['ideal_step_s'] * 1e3:.1f} "
                         f"| {r['comm_share'] * 100:.1f} | {r['efficiency'] * 100:.0f}% |")
    return "\n".join(lines) + "\n"


def plot(series, mode, path):
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), constrained_layout=True)
    panels = [
        (axes[0][0], "tokens/s (cluster)", "tokens_per_s", "ideal_tokens_per_s", 1),
        (axes[0][1], "mean step latency (ms)", "step_s", "ideal_step_s", 1e3),
        (axes[1][0], "communication share of the step (%)", "comm_share", None, 100),
        (axes[1][1], "scaling efficiency (%)", "efficiency", None, 100),
    ]
    sizes = sorted({(r["ranks"], r["hosts"]) for rows in series.values() for r in rows})
    for ax, title, key, ideal, scale in panels:
        for run, rows in series.items():
            x = [r["ranks"] for r in rows]
            line, = ax.plot(x, [r[key] * scale for r in rows], "o-", label=run)
            if ideal:
                ax.plot(x, [r[ideal] * scale for r in rows], "--", color=line.get_color(), alpha=0.6,
                        label=f"{run} (ideal)")
        ax.set_ylim(bottom=0)  # differences read true to size
        if key == "efficiency":
            ax.axhline(100, linestyle="--", color="gray", label="ideal")
            ax.set_ylim(top=max(110, ax.get_ylim()[1]))
        if key == "comm_share":
            ax.set_ylim(top=100)
        ax.set_title(title)
        ax.set_xscale("log", base=2)
        ax.set_xticks([s[0] for s in sizes])
        ax.set_xticklabels([f"{r}\n({h} host{'s' if h > 1 else ''})" for r, h in sizes])
        ax.minorticks_off()
        ax.set_xlabel("MPI ranks")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"{mode.capitalize()} scaling")
    fig.savefig(path, dpi=120)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["strong", "weak"], required=True)
    p.add_argument("--out", required=True, help="output prefix: writes PREFIX.md and PREFIX.png")
    p.add_argument("dirs", nargs="+", help="one output directory (with report.json) per size")
    a = p.parse_args()

    series = {}
    for r in sorted(load(a.dirs), key=lambda r: r["ranks"]):
        series.setdefault(r["run"], []).append(r)
    check_batches(series, a.mode)
    for rows in series.values():
        add_ideal(rows, a.mode)
    md = table(series, a.mode)
    Path(a.out + ".md").write_text(md)
    plot(series, a.mode, a.out + ".png")
    print(md + f"\nplot: {a.out}.png, table: {a.out}.md")


if __name__ == "__main__":
    main()
