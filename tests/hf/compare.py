#!/usr/bin/python3
"""Checks for tests/hf/hf_import.sh.

compare.py reference REFERENCE.json OURS.json
    our forward and SGD steps (hf_check) against PyTorch's (make_tiny_models.py): the
    log-probabilities of the first batch within 1e-4 of their largest magnitude, each step's loss
    and gradient norm within 1e-4 relative.
compare.py same DIR_A DIR_B
    two Hugging Face directories hold bit-identical tensors (same names, shapes, dtypes, bytes),
    and every key of B's config.json has A's value.
"""
import json
import os
import struct
import sys

TOL = 1e-4


def relative(a, b):
    return abs(a - b) / max(abs(b), 1e-30)


def reference(ref_path, ours_path):
    ref, ours = json.load(open(ref_path)), json.load(open(ours_path))
    scale = max(abs(x) for x in ref["logprobs"])
    worst = max(abs(x - y) for x, y in zip(ours["logprobs"], ref["logprobs"])) / scale
    assert len(ours["logprobs"]) == len(ref["logprobs"]), "logprob counts differ"
    assert worst <= TOL, f"log-probabilities differ by {worst:.2e} of their scale"
    for key in ("losses", "grad_norms"):
        for step, (x, y) in enumerate(zip(ours[key], ref[key])):
            assert relative(x, y) <= TOL, f"{key}[{step}]: ours {x}, PyTorch {y}"
    print(f"{os.path.basename(os.path.dirname(ref_path))}: log-probs {worst:.1e}, losses "
          f"{max(map(relative, ours['losses'], ref['losses'])):.1e}, grad norms "
          f"{max(map(relative, ours['grad_norms'], ref['grad_norms'])):.1e} (relative; PyTorch reference)")


def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], data[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}


def same(a, b):
    ta, tb = tensors(os.path.join(a, "model.safetensors")), tensors(os.path.join(b, "model.safetensors"))
    assert ta.keys() == tb.keys(), sorted(set(ta) ^ set(tb))
    for name in ta:
        assert ta[name] == tb[name], f"tensor {name} differs"
    ca, cb = json.load(open(os.path.join(a, "config.json"))), json.load(open(os.path.join(b, "config.json")))
    for key, value in cb.items():
        assert ca.get(key) == value, f"config.json {key}: {ca.get(key)!r} vs {value!r}"
    print(f"{b}: {len(ta)} tensors bit-identical to {a}")


if __name__ == "__main__":
    {"reference": reference, "same": same}[sys.argv[1]](*sys.argv[2:])
