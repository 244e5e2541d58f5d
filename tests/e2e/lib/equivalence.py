"""Two runs of the same job are equivalent: per step the loss and the global gradient norm agree,
and at the end so does every tensor of the whole model (report's param_checksums: sum, sum of
squares, and a signed sum over a fixed ±1 pattern of the full index). The gradient norm catches
what AdamW hides from the loss (a gradient scaled by a constant: a wrong 1/dp, a replicated
tensor counted twice); the checksums catch a shard in the wrong place.

usage: equivalence.py BASE_REPORT OTHER_REPORT... (prints one line each, asserts)"""
import json
import math
import sys

LOSS_TOL = 1e-4   # relative, per step
NORM_TOL = 1e-4   # relative, per step
# Relative to the tensor's L2 norm (sums) or its square (sum of squares). Looser than the curves:
# a key bias gets a gradient that is zero but for rounding (softmax ignores a shift shared by all
# keys), and AdamW turns that noise into lr-sized steps whose signs depend on the summation
# order, so it drifts differently per layout (up to 6e-4 of its norm after 12 steps here). A shard
# in the wrong place moves these figures by O(1).
PARAM_TOL = 3e-3


def run_of(path):
    return json.load(open(path))["runs"][0]


def worst_relative(a, b):
    assert len(a) == len(b), (len(a), len(b))
    return max(abs(x - y) / max(abs(x), 1e-30) for x, y in zip(a, b))


def worst_param(a, b):
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))
    worst, where = 0.0, None
    for name, (s, sq, proj) in a.items():
        s2, sq2, proj2 = b[name]
        norm = math.sqrt(sq) or 1.0
        err = max(abs(s - s2) / norm, abs(sq - sq2) / (sq or 1.0), abs(proj - proj2) / norm)
        if err > worst:
            worst, where = err, name
    return worst, where


def compare(base_path, other_path):
    base, other = run_of(base_path), run_of(other_path)
    loss = worst_relative(base["loss_per_step"], other["loss_per_step"])
    norm = worst_relative(base["grad_norm_per_step"], other["grad_norm_per_step"])
    param, where = worst_param(base["param_checksums"], other["param_checksums"])
    print(f"  {other_path}: loss {loss:.1e}, grad norm {norm:.1e}, parameters {param:.1e} ({where})")
    assert loss < LOSS_TOL, ("loss", other_path, loss)
    assert norm < NORM_TOL, ("grad norm", other_path, norm)
    assert param < PARAM_TOL, ("parameters", other_path, where, param)
    return other


if __name__ == "__main__":
    for path in sys.argv[2:]:
        compare(sys.argv[1], path)
