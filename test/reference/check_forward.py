#!/usr/bin/python3
"""Cross-check gpt2_reference.forward against a GPT-2 assembled from torch.nn building blocks
(nn.LayerNorm, nn.MultiheadAttention, F.gelu): a second, differently written forward pass.

Usage: python3 check_forward.py --model DIR --ids 1,2,3  ->  {"max_abs_diff": x, "max_abs_logit": y}
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpt2_reference import forward, load_model  # noqa: E402


def nn_forward(cfg, P, ids):
    d, H, T = cfg["d"], cfg["n_head"], ids.shape[1]
    act = {"gelu": F.gelu, "relu": F.relu}.get(cfg["act"], lambda x: F.gelu(x, approximate="tanh"))

    def ln(wb):
        m = nn.LayerNorm(d, eps=cfg["eps"]).double()
        m.weight.data, m.bias.data = wb[0].clone(), wb[1].clone()
        return m
    x = F.embedding(ids, P["wte"]) + P["wpe"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)  # True = may not attend
    for blk in P["blocks"]:
        mha = nn.MultiheadAttention(d, H, batch_first=True).double()
        mha.in_proj_weight.data = blk["attn.c_attn"][0].T.clone()  # HF Conv1D stores [in, out]
        mha.in_proj_bias.data = blk["attn.c_attn"][1].clone()
        mha.out_proj.weight.data = blk["attn.c_proj"][0].T.clone()
        mha.out_proj.bias.data = blk["attn.c_proj"][1].clone()
        h = ln(blk["ln_1"])(x)
        x = x + mha(h, h, h, attn_mask=mask, need_weights=False)[0]
        fc, proj = nn.Linear(d, blk["mlp.c_fc"][0].shape[1]).double(), nn.Linear(blk["mlp.c_fc"][0].shape[1], d).double()
        fc.weight.data, fc.bias.data = blk["mlp.c_fc"][0].T.clone(), blk["mlp.c_fc"][1].clone()
        proj.weight.data, proj.bias.data = blk["mlp.c_proj"][0].T.clone(), blk["mlp.c_proj"][1].clone()
        x = x + proj(act(fc(ln(blk["ln_2"])(x))))
    return F.linear(ln(P["ln_f"])(x), P["unembed"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--ids", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    cfg, P = load_model(a.model, torch.float64)
    ids = torch.tensor([[int(t) for t in a.ids.split(",")]])
    with torch.no_grad():
        ours, theirs = forward(cfg, P, ids), nn_forward(cfg, P, ids)
    print(json.dumps({"max_abs_diff": (ours - theirs).abs().max().item(), "max_abs_logit": theirs.abs().max().item()}))


if __name__ == "__main__":
    main()
