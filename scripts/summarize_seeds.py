#!/usr/bin/env python3
"""Mean ± sample standard deviation over seeds of a job whose runs are named NAME,seed=S.

usage: scripts/summarize_seeds.py RESULTS_DIR/report.json
Prints one Markdown row per NAME: validation perplexity (each seed, mean ± sd), peak RSS per
rank, AMU, step time (mean over measured steps), tokens/s, and energy per token (marked as an
estimate when the report says so).
"""
import json
import statistics
import sys
from collections import OrderedDict


def mean_sd(values):
    m = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return m, sd


def main(path):
    report = json.load(open(path))
    groups = OrderedDict()
    for run in report["runs"]:
        name = run["name"].split(",seed=")[0]
        groups.setdefault(name, []).append(run)
    print("| model | parameters | val ppl per seed | val ppl mean ± sd | step ms mean ± sd | "
          "tokens/s mean ± sd | peak RSS MiB (max rank) | AMU (mean rank) | J/token |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, runs in groups.items():
        ppl = [r["quality"]["val_perplexity_final"] for r in runs]
        step = [r["latency"]["step"]["mean"] * 1e3 for r in runs]
        tps = [r["throughput"]["tokens_per_s"] for r in runs]
        rss = [r["memory"]["rss_hwm_bytes"]["max"] / 2**20 for r in runs]
        amu = [r["memory"]["amu"]["mean"] * 100 for r in runs]
        jpt = [r["energy"]["j_per_token"] for r in runs]
        est = " (est.)" if any(r["energy"]["estimated"] for r in runs) else ""
        p_m, p_sd = mean_sd(ppl)
        s_m, s_sd = mean_sd(step)
        t_m, t_sd = mean_sd(tps)
        print(f"| {name} | {runs[0]['model']['parameters'] / 1e6:.2f} M | "
              f"{', '.join(f'{p:.3f}' for p in ppl)} | {p_m:.3f} ± {p_sd:.3f} | "
              f"{s_m:.0f} ± {s_sd:.0f} | {t_m:.0f} ± {t_sd:.0f} | {min(rss):.0f}–{max(rss):.0f} | "
              f"{statistics.mean(amu):.2f} % | {statistics.mean(jpt):.5f}{est} |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
