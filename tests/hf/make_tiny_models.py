#!/usr/bin/python3
"""Tiny random Llama, Qwen2 and GPT-NeoX models in the Hugging Face layout, with reference results.

For each architecture, OUT/<arch>/ gets config.json and model.safetensors exactly as Hugging Face's
save_pretrained writes them (tensor names, shapes, (out, in) weights, GPT-NeoX's fused per-head
[q|k|v] rows), and reference.json: the token batches, the log-probabilities of the first batch,
and the loss and gradient norm of each of a few plain SGD steps (p -= lr * grad). The forward
passes are plain PyTorch re-implementations of transformers' modeling code (LlamaRMSNorm in
float32, rotate_half RoPE, repeat_kv, GPT-NeoX's parallel residual and partial rotary, exact
GELU); transformers itself is not needed.

Usage: make_tiny_models.py OUT            the three models and their references
       make_tiny_models.py --broken OUT   also the bad inputs the import must refuse (OUT/bad_*)
"""
import json
import math
import os
import struct
import sys

import torch

B, T, STEPS, LR = 2, 16, 3, 0.1
DTYPE_NAMES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


def write_safetensors(path, tensors):
    """The safetensors format: 8-byte little-endian header size, JSON header, raw data."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        assert info["dtype"] == "F32", info["dtype"]
        out[name] = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32).reshape(info["shape"])
    return out


# ---- the architectures, as transformers computes them ----

def rms_norm(x, w, eps):  # LlamaRMSNorm / Qwen2RMSNorm: in float32, weight * normalised
    xf = x.float()
    return w * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope(x, base, rot):  # x (B,H,T,hs); the first `rot` dimensions turn
    inv_freq = 1.0 / (base ** (torch.arange(0, rot, 2, dtype=torch.int64).float() / rot))
    freqs = torch.outer(torch.arange(x.shape[2]).float(), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    return torch.cat((x_rot * cos + rotate_half(x_rot) * sin, x_pass), dim=-1)


def attention(q, k, v):  # (B,H,T,hs), k and v already repeated to H heads
    hs = q.shape[-1]
    scores = q @ k.transpose(-1, -2) / math.sqrt(hs)
    mask = torch.triu(torch.ones(q.shape[2], q.shape[2], dtype=torch.bool), 1)
    probs = torch.softmax(scores.masked_fill(mask, float("-inf")), dim=-1)
    return probs @ v


def repeat_kv(x, n_rep):  # (B,Hkv,T,hs) → (B,Hkv·n_rep,T,hs): query head h reads kv head h // n_rep
    return x[:, :, None].expand(x.shape[0], x.shape[1], n_rep, *x.shape[2:]).reshape(
        x.shape[0], x.shape[1] * n_rep, *x.shape[2:])


def linear(x, p, name, bias):
    y = x @ p[name + ".weight"].t()
    return y + p[name + ".bias"] if bias else y


def llama_forward(p, cfg, tokens, qkv_bias):
    C, H, Hkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hs, eps, Bn, Tn = C // H, cfg["rms_norm_eps"], tokens.shape[0], tokens.shape[1]
    x = p["model.embed_tokens.weight"][tokens]
    for l in range(cfg["num_hidden_layers"]):
        a = f"model.layers.{l}."
        h = rms_norm(x, p[a + "input_layernorm.weight"], eps)
        q = linear(h, p, a + "self_attn.q_proj", qkv_bias).view(Bn, Tn, H, hs).transpose(1, 2)
        k = linear(h, p, a + "self_attn.k_proj", qkv_bias).view(Bn, Tn, Hkv, hs).transpose(1, 2)
        v = linear(h, p, a + "self_attn.v_proj", qkv_bias).view(Bn, Tn, Hkv, hs).transpose(1, 2)
        q, k = rope(q, cfg["rope_theta"], hs), rope(k, cfg["rope_theta"], hs)
        y = attention(q, repeat_kv(k, H // Hkv), repeat_kv(v, H // Hkv))
        x = x + linear(y.transpose(1, 2).reshape(Bn, Tn, C), p, a + "self_attn.o_proj", False)
        h = rms_norm(x, p[a + "post_attention_layernorm.weight"], eps)
        gate = linear(h, p, a + "mlp.gate_proj", False)
        x = x + linear(torch.nn.functional.silu(gate) * linear(h, p, a + "mlp.up_proj", False), p,
                       a + "mlp.down_proj", False)
    x = rms_norm(x, p["model.norm.weight"], eps)
    head = p["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else p["lm_head.weight"]
    return x @ head.t()


def neox_forward(p, cfg, tokens):
    C, H, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    hs, Bn, Tn = C // H, tokens.shape[0], tokens.shape[1]
    rot = int(hs * cfg["rotary_pct"])
    ln = lambda x, name: torch.nn.functional.layer_norm(x, (C,), p[name + ".weight"], p[name + ".bias"], eps)
    x = p["gpt_neox.embed_in.weight"][tokens]
    for l in range(cfg["num_hidden_layers"]):
        a = f"gpt_neox.layers.{l}."
        qkv = linear(ln(x, a + "input_layernorm"), p, a + "attention.query_key_value", True)
        qkv = qkv.view(Bn, Tn, H, 3 * hs).permute(0, 2, 1, 3)  # per head [q | k | v]
        q, k, v = qkv[..., :hs], qkv[..., hs:2 * hs], qkv[..., 2 * hs:]
        q, k = rope(q, cfg["rotary_emb_base"], rot), rope(k, cfg["rotary_emb_base"], rot)
        attn = linear(attention(q, k, v).transpose(1, 2).reshape(Bn, Tn, C), p, a + "attention.dense", True)
        mlp = lambda h: linear(torch.nn.functional.gelu(linear(h, p, a + "mlp.dense_h_to_4h", True)), p,
                               a + "mlp.dense_4h_to_h", True)
        if cfg["use_parallel_residual"]:
            x = x + attn + mlp(ln(x, a + "post_attention_layernorm"))
        else:
            x = x + attn
            x = x + mlp(ln(x, a + "post_attention_layernorm"))
    x = ln(x, "gpt_neox.final_layer_norm")
    head = p["gpt_neox.embed_in.weight"] if cfg["tie_word_embeddings"] else p["embed_out.weight"]
    return x @ head.t()


# ---- the tiny models ----

COMMON = {"vocab_size": 300, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
          "max_position_embeddings": 64, "torch_dtype": "float32", "initializer_range": 0.02,
          "bos_token_id": 1, "eos_token_id": 2, "transformers_version": "4.44.0", "use_cache": True}

CONFIGS = {
    "llama": dict(COMMON, architectures=["LlamaForCausalLM"], model_type="llama", intermediate_size=96,
                  num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=5000.0, hidden_act="silu",
                  tie_word_embeddings=False, rope_scaling=None, attention_bias=False, mlp_bias=False,
                  attention_dropout=0.0, pretraining_tp=1),
    "qwen2": dict(COMMON, architectures=["Qwen2ForCausalLM"], model_type="qwen2", intermediate_size=96,
                  num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1000000.0, hidden_act="silu",
                  tie_word_embeddings=True, rope_scaling=None, use_sliding_window=False,
                  sliding_window=4096, max_window_layers=28, attention_dropout=0.0),
    "neox": dict(COMMON, architectures=["GPTNeoXForCausalLM"], model_type="gpt_neox", intermediate_size=256,
                 layer_norm_eps=1e-5, rotary_pct=0.25, rotary_emb_base=10000, use_parallel_residual=True,
                 hidden_act="gelu", tie_word_embeddings=False, rope_scaling=None, attention_bias=True,
                 attention_dropout=0.0, hidden_dropout=0.0, classifier_dropout=0.1),
}


def shapes(arch, cfg):
    V, C, F, L = cfg["vocab_size"], cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    out = {}
    if arch == "neox":
        out["gpt_neox.embed_in.weight"] = (V, C)
        for l in range(L):
            a = f"gpt_neox.layers.{l}."
            for n in ("input_layernorm", "post_attention_layernorm"):
                out[a + n + ".weight"], out[a + n + ".bias"] = (C,), (C,)
            out[a + "attention.query_key_value.weight"], out[a + "attention.query_key_value.bias"] = (3 * C, C), (3 * C,)
            out[a + "attention.dense.weight"], out[a + "attention.dense.bias"] = (C, C), (C,)
            out[a + "mlp.dense_h_to_4h.weight"], out[a + "mlp.dense_h_to_4h.bias"] = (F, C), (F,)
            out[a + "mlp.dense_4h_to_h.weight"], out[a + "mlp.dense_4h_to_h.bias"] = (C, F), (C,)
        out["gpt_neox.final_layer_norm.weight"], out["gpt_neox.final_layer_norm.bias"] = (C,), (C,)
        out["embed_out.weight"] = (V, C)
        return out
    KV = cfg["num_key_value_heads"] * C // cfg["num_attention_heads"]
    out["model.embed_tokens.weight"] = (V, C)
    for l in range(L):
        a = f"model.layers.{l}."
        out[a + "input_layernorm.weight"] = (C,)
        for n, rows in (("q_proj", C), ("k_proj", KV), ("v_proj", KV)):
            out[a + f"self_attn.{n}.weight"] = (rows, C)
            if arch == "qwen2":
                out[a + f"self_attn.{n}.bias"] = (rows,)
        out[a + "self_attn.o_proj.weight"] = (C, C)
        out[a + "post_attention_layernorm.weight"] = (C,)
        out[a + "mlp.gate_proj.weight"], out[a + "mlp.up_proj.weight"] = (F, C), (F, C)
        out[a + "mlp.down_proj.weight"] = (C, F)
    out["model.norm.weight"] = (C,)
    if not cfg["tie_word_embeddings"]:
        out["lm_head.weight"] = (V, C)
    return out


def random_params(arch, cfg, gen):
    """Weights larger than a training init, so every path moves the logits visibly."""
    p = {}
    for name, shape in shapes(arch, cfg).items():
        if "norm" in name and name.endswith("weight"):
            p[name] = 1.0 + 0.2 * torch.randn(shape, generator=gen)
        elif name.endswith("bias"):
            p[name] = 0.1 * torch.randn(shape, generator=gen)
        else:
            p[name] = 0.15 * torch.randn(shape, generator=gen)
    return p


def forward(arch, p, cfg, tokens):
    if arch == "neox":
        return neox_forward(p, cfg, tokens)
    return llama_forward(p, cfg, tokens, arch == "qwen2")


def reference(arch, params, cfg, batches):
    p = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    out = {"tokens": batches.tolist(), "lr": LR, "losses": [], "grad_norms": []}
    for step in range(STEPS):
        inputs, targets = batches[step, :, :-1], batches[step, :, 1:]
        logits = forward(arch, p, cfg, inputs)
        if step == 0:
            out["logprobs"] = torch.log_softmax(logits, -1).detach().flatten().tolist()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        grads = torch.autograd.grad(loss, list(p.values()))
        out["losses"].append(loss.item())
        out["grad_norms"].append(math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads)))
        with torch.no_grad():
            for t, g in zip(p.values(), grads):
                t -= LR * g
    return out


def save(directory, cfg, params):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(directory, "model.safetensors"), params)


def broken(out, cfg, params):
    """One directory per bad input, each a copy of the Llama model with one thing wrong."""
    cases = {
        "bad_arch": (dict(cfg, architectures=["MistralForCausalLM"]), params),
        "bad_rope_scaling": (dict(cfg, rope_scaling={"type": "linear", "factor": 2.0}), params),
        "bad_unknown_key": (dict(cfg, sliding_window=4096), params),
        "bad_missing": (cfg, {k: v for k, v in params.items() if k != "model.layers.1.mlp.up_proj.weight"}),
        "bad_shape": (cfg, dict(params, **{"model.layers.0.self_attn.k_proj.weight": torch.zeros(64, 64)})),
        "bad_dtype": (cfg, dict(params, **{"model.norm.weight": params["model.norm.weight"].bfloat16()})),
    }
    for name, (c, p) in cases.items():
        save(os.path.join(out, name), c, p)


def main():
    args = sys.argv[1:]
    with_broken = args[:1] == ["--broken"]
    out = args[-1]
    for i, (arch, cfg) in enumerate(CONFIGS.items()):
        gen = torch.Generator().manual_seed(100 + i)
        params = random_params(arch, cfg, gen)
        batches = torch.randint(0, cfg["vocab_size"], (STEPS, B, T + 1), generator=gen)
        save(os.path.join(out, arch), cfg, params)
        with open(os.path.join(out, arch, "reference.json"), "w") as f:
            json.dump(reference(arch, params, cfg, batches), f)
        if with_broken and arch == "llama":
            broken(out, cfg, params)


if __name__ == "__main__":
    main()
