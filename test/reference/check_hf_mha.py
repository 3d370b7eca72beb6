#!/usr/bin/python3
"""Explicit multi-head attention check of hf_reference.py for llama / qwen2 / mistral (no window).

Recomputes the forward with a per-head Python loop, RoPE written with complex numbers
(z = x[:h] + i·x[h:], z·e^{i·p·θ}, which is what rotate_half on the two halves means) and the
kv head of each query head picked explicitly, then compares logits with hf_reference.forward.
Usage: check_hf_mha.py --model DIR [--model DIR2 ...] --ids 1,2,3
  -> {DIR: {"max_abs_diff": ..., "max_abs_logit": ...}, ...}
"""
import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference as ref  # noqa: E402


def rope_complex(x, theta):
    """x: [pos, dh] for one head -> rotated, via complex multiplication."""
    T, dh = x.shape
    h = dh // 2
    z = torch.complex(x[:, :h], x[:, h:])
    ang = torch.arange(T, dtype=torch.float64)[:, None] * (theta ** (-torch.arange(h, dtype=torch.float64) * 2 / dh))[None]
    z = z * torch.polar(torch.ones_like(ang), ang)
    return torch.cat((z.real, z.imag), -1)


def explicit(cfg, P, ids):
    H, Hkv, dh = cfg["H"], cfg["Hkv"], cfg["dh"]
    x = P["embed"][ids]  # [pos, d]
    T = x.shape[0]
    rms = lambda v, w: w * v / torch.sqrt((v * v).mean(-1, keepdim=True) + cfg["eps"])
    for blk in P["blocks"]:
        h = rms(x, blk["ln1"][0])
        heads = []
        for hd in range(H):
            kv = hd // (H // Hkv)
            sl, kvsl = slice(hd * dh, (hd + 1) * dh), slice(kv * dh, (kv + 1) * dh)
            q = rope_complex(h @ blk["q"][0][sl].T + blk["q"][1][sl], cfg["theta"])
            k = rope_complex(h @ blk["k"][0][kvsl].T + blk["k"][1][kvsl], cfg["theta"])
            v = h @ blk["v"][0][kvsl].T + blk["v"][1][kvsl]
            s = (q @ k.T) / math.sqrt(dh)
            s = s + torch.triu(torch.full((T, T), float("-inf"), dtype=s.dtype), 1)
            heads.append(torch.softmax(s, -1) @ v)
        x = x + torch.cat(heads, -1) @ blk["o"][0].T + blk["o"][1]
        h = rms(x, blk["ln2"][0])
        gate = h @ blk["gate"][0].T
        x = x + (torch.nn.functional.silu(gate) * (h @ blk["up"][0].T)) @ blk["down"][0].T
    return rms(x, P["ln_f"][0]) @ P["unembed"].T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, action="append")
    ap.add_argument("--ids", required=True)
    a = ap.parse_args()
    ids = torch.tensor([int(t) for t in a.ids.split(",")])
    out = {}
    for m in a.model:
        cfg, P = ref.load_model(m, torch.float64)
        if cfg["type"] not in ("llama", "qwen2", "mistral") or any(w is not None for w in cfg["window"]) or cfg["act"] != "silu":
            ref.fail(f"check_hf_mha: {m} is not a llama/qwen2/mistral model with silu and no sliding window")
        with torch.no_grad():
            want = explicit(cfg, P, ids)
            got = ref.forward(cfg, P, ids[None])[0]
        out[m] = {"max_abs_diff": (want - got).abs().max().item(), "max_abs_logit": want.abs().max().item()}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
