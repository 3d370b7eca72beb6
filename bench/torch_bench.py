#!/usr/bin/python3
"""PyTorch side of `npm run bench`: the same forward, backward and naive patching sweep as
bench/bench.ts, on identical shapes, with its own small GPT-2 (float32, random weights).

Usage:
  python3 bench/torch_bench.py --config test/fixtures/gpt2-tokenizer/config.json \
      --batch 8 --pos 16 --threads 1 --naive-layers 0,1 --reps 3

Prints one JSON object on stdout; logs go to stderr. Set the thread count through the
environment too (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS) so that the BLAS pool
obeys it: bench.ts starts one process per thread count for that reason.

Timings mirror bench.ts:
  forward_s   logits [batch, pos, vocab] of the corrupt prompts (no autograd);
  backward_s  forward + gradient of the mean last-position logit difference w.r.t. every
              blocks.{l}.hook_resid_pre (weights need no gradient);
  patch_naive_s  one full forward per patch: resid_pre at (layer, position) of the corrupt run
              replaced by the clean run's, for every position of the given layers, plus the
              clean cache and the two baseline runs.
Each reported time is the median over --reps runs after one warm-up; *_cpu_s is process CPU time
(all threads), which is steadier than wall time on a shared machine.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

import torch


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def load_config(path):
    with open(path) as f:
        c = json.load(f)
    d = c["n_embd"]
    return dict(
        n_layer=c["n_layer"],
        n_head=c["n_head"],
        d=d,
        d_mlp=c.get("n_inner") or 4 * d,
        n_ctx=c["n_positions"],
        vocab=c["vocab_size"],
        eps=c.get("layer_norm_epsilon", 1e-5),
    )


def random_params(cfg, seed):
    """GPT-2-shaped float32 weights (Conv1D layout [in, out], as in the HF checkpoints)."""
    g = torch.Generator().manual_seed(seed)
    d, m = cfg["d"], cfg["d_mlp"]

    def normal(*shape, std=0.02):
        return torch.randn(*shape, generator=g) * std

    def gain(n):
        return 1 + normal(n, std=0.1)

    P = {"wte": normal(cfg["vocab"], d), "wpe": normal(cfg["n_ctx"], d), "lnf_w": gain(d), "lnf_b": normal(d), "blocks": []}
    for _ in range(cfg["n_layer"]):
        P["blocks"].append(dict(
            ln1_w=gain(d), ln1_b=normal(d), attn_w=normal(d, 3 * d), attn_b=normal(3 * d),
            proj_w=normal(d, d), proj_b=normal(d), ln2_w=gain(d), ln2_b=normal(d),
            fc_w=normal(d, m), fc_b=normal(m), fcproj_w=normal(m, d), fcproj_b=normal(d),
        ))
    return P


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    xc = x - mu
    return xc / torch.sqrt((xc * xc).mean(-1, keepdim=True) + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)))


def forward(cfg, P, ids, resid_hook=None):
    """Logits [batch, pos, vocab]. resid_hook(l, x) may replace blocks.{l}.hook_resid_pre."""
    B, T = ids.shape
    H, d = cfg["n_head"], cfg["d"]
    dh = d // H
    mask = torch.full((T, T), float("-inf")).triu(1)
    x = P["wte"][ids] + P["wpe"][:T]  # [b, p, d]
    for l, w in enumerate(P["blocks"]):
        if resid_hook is not None:
            x = resid_hook(l, x)
        h = layer_norm(x, w["ln1_w"], w["ln1_b"], cfg["eps"])
        q, k, v = (h @ w["attn_w"] + w["attn_b"]).split(d, -1)  # [b, p, d] each
        q, k, v = (t.view(B, T, H, dh).transpose(1, 2) for t in (q, k, v))  # [b, h, p, dh]
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + mask, -1)  # [b, h, q, k]
        z = (att @ v).transpose(1, 2).reshape(B, T, d)
        x = x + z @ w["proj_w"] + w["proj_b"]
        h2 = layer_norm(x, w["ln2_w"], w["ln2_b"], cfg["eps"])
        x = x + gelu_new(h2 @ w["fc_w"] + w["fc_b"]) @ w["fcproj_w"] + w["fcproj_b"]
    return layer_norm(x, P["lnf_w"], P["lnf_b"], cfg["eps"]) @ P["wte"].T  # [b, p, vocab]


def logit_diff(logits, ans, wrong):
    """Per-prompt logit[answer] - logit[wrong] at the last position, [batch]."""
    last = logits[:, -1, :]
    r = torch.arange(last.shape[0])
    return last[r, ans] - last[r, wrong]


def timed(fn, reps):
    """Median wall and CPU seconds of fn() over reps runs after one warm-up."""
    fn()
    walls, cpus = [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--pos", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--naive-layers", default="", help="comma list of layers for the naive sweep (empty: skip)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)

    torch.set_num_threads(a.threads)
    cfg = load_config(a.config)
    if a.pos > cfg["n_ctx"]:
        raise SystemExit(f"torch_bench: --pos {a.pos} exceeds n_positions {cfg['n_ctx']}")
    log(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), building random weights")
    P = random_params(cfg, a.seed)
    g = torch.Generator().manual_seed(a.seed + 1)
    clean = torch.randint(0, cfg["vocab"], (a.batch, a.pos), generator=g)
    corrupt = clean.clone()
    corrupt[:, a.pos // 2] = torch.randint(0, cfg["vocab"], (a.batch,), generator=g)
    ans = torch.randint(0, cfg["vocab"], (a.batch,), generator=g)
    wrong = torch.randint(0, cfg["vocab"], (a.batch,), generator=g)
    out = {"torch_version": torch.__version__, "threads": torch.get_num_threads(), "batch": a.batch, "pos": a.pos}

    with torch.no_grad():
        out["forward_s"], out["forward_cpu_s"] = timed(lambda: forward(cfg, P, corrupt), a.reps)
    log(f"forward {out['forward_s']:.3f} s")

    def fwd_bwd():
        resids = []

        def keep(l, x):
            if l == 0:
                x = x.detach().requires_grad_(True)
            resids.append(x)
            return x

        m = logit_diff(forward(cfg, P, corrupt, keep), ans, wrong).mean()
        return torch.autograd.grad(m, resids)

    out["backward_s"], out["backward_cpu_s"] = timed(fwd_bwd, a.reps)
    log(f"forward+backward {out['backward_s']:.3f} s")

    layers = [int(s) for s in a.naive_layers.split(",") if s.strip() != ""]
    if layers:
        def sweep():
            with torch.no_grad():
                cache = {}

                def save(l, x):
                    cache[l] = x
                    return x

                ld_clean = logit_diff(forward(cfg, P, clean, save), ans, wrong).mean().item()
                ld_corrupt = logit_diff(forward(cfg, P, corrupt), ans, wrong).mean().item()
                vals = []
                for layer in layers:
                    for p in range(a.pos):
                        def patch(l, x, layer=layer, p=p):
                            if l != layer:
                                return x
                            x = x.clone()
                            x[:, p] = cache[l][:, p]
                            return x

                        ld = logit_diff(forward(cfg, P, corrupt, patch), ans, wrong).mean().item()
                        vals.append((ld - ld_corrupt) / (ld_clean - ld_corrupt))
                return vals

        c0, t0 = time.process_time(), time.perf_counter()
        sweep()  # one run: it is long, and holds many forwards already
        out["patch_naive_s"] = time.perf_counter() - t0
        out["patch_naive_cpu_s"] = time.process_time() - c0
        out["naive_patches"] = len(layers) * a.pos
        log(f"naive sweep ({out['naive_patches']} patches) {out['patch_naive_s']:.2f} s")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
