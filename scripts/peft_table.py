#!/usr/bin/env python3
"""The fine-tuning study's table (docs/PEFT.md): per finetune.method, mean ± standard deviation
over the seeds of a report.json from jobs/paper/peft.json: final training loss (mean of the last
10 steps), validation loss, AMU, PCU, AL (median step seconds), ST both ways, AEC, trainable and
total parameters, gradient and optimizer bytes.

    python3 scripts/peft_table.py RESULTS/report.json
"""
import json
import statistics
import sys


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g}"


def row(run):
    validation = run["validation"][-1] if isinstance(run["validation"], list) else run["validation"]
    arena = run["ranks"][0]["arena_bytes"]
    return {
        "train loss": statistics.mean(run["loss_per_step"][-10:]),
        "val loss": validation["loss"] if validation else None,
        "AMU": run["memory"]["amu"]["mean"],
        "PCU": run["compute"]["pcu_busy_fraction"]["mean"],
        "AL s": run["latency"]["step"]["p50"],
        "ST /param": run["throughput"]["st_samples_per_param_per_s"],
        "ST /trainable": run["throughput"]["st_samples_per_trainable_param_per_s"],
        "AEC W": run["energy"]["aec_w"],
        "trainable": run["model"]["trainable_parameters"],
        "params": run["model"]["parameters"],
        "grad MiB": arena["gradients"] / 2**20,
        "optimizer MiB": arena["optimizer"] / 2**20,
    }


def main(path):
    runs = json.load(open(path))["runs"]
    by_method = {}
    for run in runs:
        method = run["config"]["finetune"]["method"]
        by_method.setdefault(method, []).append(row(run))
    columns = list(next(iter(by_method.values()))[0].keys())
    print("| method | seeds | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 2) + "|")
    for method, rows in by_method.items():
        cells = [mean_std([r[c] for r in rows]) for c in columns]
        print(f"| {method} | {len(rows)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
