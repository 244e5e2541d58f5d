#!/usr/bin/python3
"""PyTorch CPU peer for one efficientllm training step (tokens/s comparison).

Builds exactly the model the C++ trainer trains (GPT-2 / llm.c layout, fp32, byte-level
vocab 256, learned positions, pre-norm LayerNorm blocks, GELU-tanh MLP, tied wte head,
mean cross-entropy over all B*T positions), with the same init (N(0, 0.02) weights and
embeddings, zero biases, LN ones/zeros) and optimizer (AdamW lr=1e-3, betas=(0.9, 0.95),
eps=1e-8, weight_decay=0.1 on 2-D weights/embeddings only, global grad-norm clip 1.0).
The learning rate is held constant: a warmup/cosine schedule costs nothing per step.

Each timed step = zero_grad, forward, backward, clip_grad_norm_, optimizer.step, timed with
time.perf_counter. Batch sampling happens outside the timed region. `--warmup` untimed
steps run first.

Run with Debian's python3-torch (torch 1.13; the pyenv `python3` on PATH has no torch):

    OPENBLAS_NUM_THREADS=2 /usr/bin/python3 bench/pytorch_gpt.py --steps 5 --json
    /usr/bin/python3 bench/pytorch_gpt.py --layers 2 --d-model 128 --steps 30 \\
        --corpus /usr/share/games/fortunes/fortunes

Thread pinning: Debian's torch does its matmuls in the system BLAS (OpenBLAS, with its
own pthread pool) and everything else in torch's OpenMP pool (--threads). On a 2-core
machine the fair comparison pins both pools: OPENBLAS_NUM_THREADS=2 with --threads 1.
Torch threads 2 plus OpenBLAS 2 oversubscribes the cores (4 busy threads on 2 cores).

Output: one human-readable line; with --json also one JSON object on stdout with keys
peer, torch_version, threads, openblas_threads, blas, params, ms_per_step{mean,min,max,p50},
tokens_per_s, loss_first, loss_last, attention_impl (plus the model/run shape).
"""
import argparse
import json
import math
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")  # added in torch 2.0


class Block(nn.Module):
    def __init__(self, C, n_heads, d_ff, T):
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(C, eps=1e-5)
        self.qkv = nn.Linear(C, 3 * C)  # q, k, v in that order
        self.proj = nn.Linear(C, C)
        self.ln2 = nn.LayerNorm(C, eps=1e-5)
        self.fc = nn.Linear(C, d_ff)
        self.fc_out = nn.Linear(d_ff, C)
        if not HAS_SDPA:  # causal mask for the plain softmax path
            self.register_buffer("mask", torch.tril(torch.ones(T, T, dtype=torch.bool)))

    def attn(self, x):
        B, T, C = x.shape
        hs = C // self.n_heads
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, nh, T, hs)
        q, k, v = (t.view(B, T, self.n_heads, hs).transpose(1, 2) for t in (q, k, v))
        if HAS_SDPA:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
            att = att.masked_fill(~self.mask[:T, :T], float("-inf"))
            y = F.softmax(att, dim=-1) @ v
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        x = x + self.fc_out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))
        return x


class GPT(nn.Module):
    def __init__(self, V, L, C, n_heads, d_ff, T):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block(C, n_heads, d_ff, T) for _ in range(L))
        self.lnf = nn.LayerNorm(C, eps=1e-5)
        # Init: N(0, 0.02) for every weight matrix and embedding, zero biases, LN = ones/zeros
        # (nn.LayerNorm already initialises to ones/zeros).
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for blk in self.blocks:
            x = blk(x)
        logits = self.lnf(x) @ self.wte.weight.t()  # tied head
        return F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T))


def blas_in_use():
    """Which BLAS library the process actually mapped (Linux), else torch's build info."""
    try:
        libs = {line.split()[-1] for line in open("/proc/self/maps") if "blas" in line.lower()}
        if libs:
            return sorted(libs, key=len)[-1].rsplit("/", 1)[-1]  # e.g. libopenblasp-r0.3.21.so
    except OSError:
        pass
    cfg = torch.__config__.show()
    return next((p.strip() for p in cfg.split(",") if "BLAS_INFO" in p), None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--d-model", type=int, default=384)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--d-ff", type=int, default=None, help="default 4*d_model")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before timing")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--corpus", default=None, help="text file (bytes); default random bytes")
    ap.add_argument("--json", action="store_true", help="also print one JSON object")
    a = ap.parse_args()
    d_ff = a.d_ff or 4 * a.d_model
    B, T, V = a.batch, a.seq_len, 256
    if a.d_model % a.heads:
        ap.error(f"--d-model {a.d_model} is not divisible by --heads {a.heads}")

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)  # data stream, independent of the init
    model = GPT(V, a.layers, a.d_model, a.heads, d_ff, T)
    n_params = sum(p.numel() for p in model.parameters())  # wte counted once (tied)

    # Weight decay on 2-D tensors (weight matrices, wte, wpe) only; not biases or LN params.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)

    if a.corpus:
        with open(a.corpus, "rb") as f:
            data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).long()
        assert data.numel() > T + 1, "corpus shorter than seq_len + 1 bytes"

    def batch():
        """(B, T) inputs and next-byte targets: random windows of the corpus, or random bytes."""
        if not a.corpus:
            seq = torch.randint(0, V, (B, T + 1), generator=gen)
        else:
            starts = torch.randint(0, data.numel() - T - 1, (B,), generator=gen)
            seq = torch.stack([data[s:s + T + 1] for s in starts.tolist()])
        return seq[:, :-1], seq[:, 1:]

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    losses, times = [], []
    for i in range(a.warmup + a.steps):
        x, y = batch()
        t0 = time.perf_counter()
        losses.append(step(x, y))
        if i >= a.warmup:
            times.append(time.perf_counter() - t0)

    ms = [t * 1e3 for t in times]
    mean_s = statistics.mean(times)
    res = {
        "peer": "pytorch",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "blas": blas_in_use(),
        "params": n_params,
        "ms_per_step": {"mean": statistics.mean(ms), "min": min(ms), "max": max(ms),
                        "p50": statistics.median(ms)},
        "tokens_per_s": B * T / mean_s,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "attention_impl": "sdpa" if HAS_SDPA else "masked_softmax",
        "model": {"layers": a.layers, "d_model": a.d_model, "heads": a.heads, "d_ff": d_ff,
                  "seq_len": T, "vocab": V},
        "batch": B, "steps": a.steps, "warmup": a.warmup,
        "data": a.corpus or "random",
    }
    print(f"pytorch {torch.__version__} threads={res['threads']} "
          f"openblas={res['openblas_threads']} blas={res['blas']} params={n_params} "
          f"attn={res['attention_impl']}: {res['ms_per_step']['mean']:.1f} ms/step "
          f"(p50 {res['ms_per_step']['p50']:.1f}, min {res['ms_per_step']['min']:.1f}), "
          f"{res['tokens_per_s']:.0f} tok/s, loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    if a.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
