#!/usr/bin/python3
"""Mean ± spread over the runs of one bench-infer report (e.g. jobs/paper/bitwidth.json's seeds),
per weight format, as a Markdown table (docs/QUANTIZATION.md, "Bit-width study").

  scripts/inference_seeds.py DIR/inference.json

Spread is the sample standard deviation over the runs (n − 1); "range" gives min–max.
"""
import json
import statistics
import sys


def figure(rows, get):
    values = [get(r) for r in rows]
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, sd, min(values), max(values)


def main(path):
    report = json.load(open(path))
    runs = report["runs"]
    formats = [f["format"] for f in runs[0]["formats"]]
    by_format = {name: [next(f for f in run["formats"] if f["format"] == name) for run in runs] for name in formats}
    fp32 = by_format["fp32"]
    columns = [
        ("weight MiB", lambda r, i: r["weight_bytes"]["total"] / 2**20, "{:.2f}"),
        ("memory cut vs fp32 (weights)", lambda r, i: fp32[i]["weight_bytes"]["total"] / r["weight_bytes"]["total"], "{:.2f}×"),
        ("RSS mean MiB", lambda r, i: r["sampling"]["rss_mean_bytes"] / 2**20, "{:.1f}"),
        ("tg tok/s (IT)", lambda r, i: r["tg"]["tokens_per_s"]["mean"], "{:.1f}"),
        ("ppl", lambda r, i: r["quality"]["ppl"], "{:.3f}"),
        ("Δppl %", lambda r, i: 100 * r["quality"]["ppl_delta"], "{:+.3f}"),
        ("KL (nats)", lambda r, i: r["quality"]["kl_divergence"], "{:.2e}"),
        ("top-1", lambda r, i: r["quality"]["top1_agreement"], "{:.4f}"),
        ("MCR bytes", lambda r, i: r["mcr"]["measured_bytes"], "{:.3f}"),
        ("MCR bits", lambda r, i: r["mcr"]["bit_ratio"], "{:.3f}"),
    ]
    print(f"{len(runs)} runs: {', '.join(r['name'] for r in runs)}; each cell mean ± sd (min – max)\n")
    print("| format | " + " | ".join(c[0] for c in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name in formats:
        rows = by_format[name]
        cells = []
        for _, get, fmt in columns:
            mean, sd, lo, hi = figure(list(enumerate(rows)), lambda ir: get(ir[1], ir[0]))
            cells.append(f"{fmt.format(mean)} ± {fmt.format(sd).rstrip('×')} ({fmt.format(lo).rstrip('×')} – {fmt.format(hi).rstrip('×')})")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
