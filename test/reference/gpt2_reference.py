#!/usr/bin/python3
"""Independent PyTorch reference for relp's GPT-2 numbers (written from scratch, float64 by default).

Usage: python3 gpt2_reference.py COMMAND --model DIR [options]; prints one JSON object on stdout.
  logits --ids 1,2,3 [--all-positions]             -> {"logits": [...]} (or [pos][vocab])
  cache  --ids 1,2,3 --names a,b                   -> {"cache": {name: nested lists}} (batch 1; -inf -> null)
  patch  --pairs FILE [--methods activation,atp,relp] [--rules relp] [--components resid_pre,attn_out,mlp_out[,z]]
         [--direction denoising|noising] [--alpha A] [--freeze ln,act,attn] [--raw-metric]
                                                   -> {"metric": {...}, "scores": {method: {component: [layer][pos]}}}
  lrp    --ids ... --target ID [--contrast ID] [--rules relp]
                                                   -> {"relevance": [pos], "output": value}
  ld     --pairs FILE                              -> {"clean": [LD per pair], "corrupt": [LD per pair]}
Metric: LD = logit[answer] - logit[wrong] at the last position, batch mean; normalised
m = (LD - LD_corrupt) / (LD_clean - LD_corrupt) unless --raw-metric. activation = m of the base run
(corrupt for denoising, clean for noising) with one (layer, pos) patched for all prompts at once;
atp/relp = sum over batch and d_model of (a_source - a_base) * dm/da at the base run, i.e. an estimate
of activation - m(base) (m(base) = 0 denoising, 1 noising). Negative values need --alpha=-0.1 syntax.
Rules (--rules): none | ln | relp (= ln,identity) | relp-ah (= ln,identity,ah), or a comma list of ln,identity,ah.
Hook names follow TransformerLens (blocks.{l}.hook_resid_pre, blocks.{l}.attn.hook_pattern, ...).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16}
RULE_ALIASES = {"none": set(), "relp": {"ln", "identity"}, "relp-ah": {"ln", "identity", "ah"}}
TANH_GELUS = ("gelu_new", "gelu_fast", "gelu_pytorch_tanh")


def fail(msg):
    raise SystemExit(f"gpt2_reference: {msg}")


# ---------------------------------------------------------------- loading
def read_safetensors(path):
    """Parse a .safetensors file with numpy: u64 LE header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        fail(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data, out = raw[8 + n:], {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        if dt not in ST_DTYPES:
            fail(f"{path}: tensor {name} has unsupported dtype {dt}")
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=np.dtype(ST_DTYPES[dt]).newbyteorder("<"))
        if dt == "BF16":  # bf16 is the top half of a float32
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        if arr.size != int(np.prod(info["shape"], dtype=np.int64)):
            fail(f"{path}: tensor {name} has {arr.size} values for shape {info['shape']}")
        out[name] = arr.astype(np.float64).reshape(info["shape"])
    return out


def load_model(model_dir, dtype):
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        fail(f"{model_dir}: no config.json")
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    get = lambda *ks, default=None: next((c[k] for k in ks if c.get(k) is not None), default)
    cfg = dict(n_layer=get("n_layer", "num_hidden_layers"), n_head=get("n_head", "num_attention_heads"),
               d=get("n_embd", "hidden_size"), eps=get("layer_norm_epsilon", default=1e-5),
               act=get("activation_function", default="gelu_new"), n_ctx=get("n_positions", "n_ctx"))
    if None in cfg.values():
        fail(f"{model_dir}/config.json: missing one of n_layer/n_head/n_embd/n_positions")
    if cfg["act"] not in TANH_GELUS + ("gelu", "relu"):
        fail(f"config.json: unsupported activation_function {cfg['act']}")
    if c.get("scale_attn_weights") is False or c.get("scale_attn_by_inverse_layer_idx"):
        fail("config.json: only standard 1/sqrt(d_head) attention scaling is supported")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    sd = {}
    for fn in files:
        if not os.path.isfile(os.path.join(model_dir, fn)):
            fail(f"{model_dir}: missing weights file {fn}")
        for k, v in read_safetensors(os.path.join(model_dir, fn)).items():
            sd[k[len("transformer."):] if k.startswith("transformer.") else k] = v

    def p(name):
        if name not in sd:
            fail(f"{model_dir}: missing tensor {name}")
        return torch.tensor(sd[name], dtype=dtype)

    P = {"wte": p("wte.weight"), "wpe": p("wpe.weight"), "ln_f": (p("ln_f.weight"), p("ln_f.bias"))}
    P["unembed"] = p("lm_head.weight") if "lm_head.weight" in sd else P["wte"]  # tied by default
    P["blocks"] = [{k: (p(f"h.{l}.{k}.weight"), p(f"h.{l}.{k}.bias"))
                    for k in ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj")}
                   for l in range(cfg["n_layer"])]
    cfg["vocab"] = P["wte"].shape[0]
    return cfg, P


# ---------------------------------------------------------------- forward
def activation(x, kind):
    if kind in TANH_GELUS:
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if kind == "gelu":
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    return torch.relu(x)


def tilde(x):
    """x~ = x + (1[x==0] + sign(x)) * 1e-6: x pushed away from zero (Identity-rule denominator)."""
    return x + ((x == 0).to(x.dtype) + torch.sign(x)) * 1e-6


def layer_norm(x, wb, eps, rules, hook, prefix):
    x = x - x.mean(-1, keepdim=True)
    scale = hook(prefix + "hook_scale", (x.pow(2).mean(-1, keepdim=True) + eps).sqrt())  # [b, pos, 1]
    if "ln" in rules:  # LN-rule: the scale is a constant for the backward pass
        scale = scale.detach()
    return hook(prefix + "hook_normalized", x / scale) * wb[0] + wb[1]


def forward(cfg, P, ids, rules=frozenset(), hook=lambda name, x: x):
    """ids: LongTensor [batch, pos] -> logits [batch, pos, vocab]. hook(name, x) may observe/replace x."""
    B, T = ids.shape
    H, d = cfg["n_head"], cfg["d"]
    dh = d // H
    embed = hook("hook_embed", P["wte"][ids])  # [b, pos, d]
    pos = hook("hook_pos_embed", P["wpe"][:T].unsqueeze(0).expand(B, T, d))
    x = embed + pos
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
    for l, blk in enumerate(P["blocks"]):
        n = f"blocks.{l}."
        x = hook(n + "hook_resid_pre", x)
        h = layer_norm(x, blk["ln_1"], cfg["eps"], rules, hook, n + "ln1.")
        qkv = h @ blk["attn.c_attn"][0] + blk["attn.c_attn"][1]  # Conv1D: [in, out]
        q, k, v = (hook(n + f"attn.hook_{s}", t.reshape(B, T, H, dh)) for s, t in zip("qkv", qkv.split(d, -1)))
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(dh)
        scores = hook(n + "attn.hook_attn_scores", scores.masked_fill(causal, float("-inf")))
        pattern = torch.softmax(scores, -1)  # [b, head, q, k]
        if "ah" in rules:  # AH-rule: attention probabilities are constants, relevance flows via V
            pattern = pattern.detach()
        pattern = hook(n + "attn.hook_pattern", pattern)
        z = hook(n + "attn.hook_z", torch.einsum("bhqk,bkhd->bqhd", pattern, v))  # [b, pos, head, dh]
        attn_out = hook(n + "hook_attn_out", z.reshape(B, T, d) @ blk["attn.c_proj"][0] + blk["attn.c_proj"][1])
        x = hook(n + "hook_resid_mid", x + attn_out)
        h = layer_norm(x, blk["ln_2"], cfg["eps"], rules, hook, n + "ln2.")
        pre = hook(n + "mlp.hook_pre", h @ blk["mlp.c_fc"][0] + blk["mlp.c_fc"][1])  # [b, pos, d_mlp]
        post = activation(pre, cfg["act"])
        if "identity" in rules:  # Identity-rule: gradient act(x)/x~, forward unchanged
            xt = tilde(pre)
            post = xt * (post / xt).detach()
        post = hook(n + "mlp.hook_post", post)
        mlp_out = hook(n + "hook_mlp_out", post @ blk["mlp.c_proj"][0] + blk["mlp.c_proj"][1])
        x = hook(n + "hook_resid_post", x + mlp_out)
    x = layer_norm(x, P["ln_f"], cfg["eps"], rules, hook, "ln_final.")
    return x @ P["unembed"].T


def recorder(store):
    def hook(name, x):
        store[name] = x
        return x
    return hook


# ---------------------------------------------------------------- commands
def parse_rules(s):
    if s in RULE_ALIASES:
        return frozenset(RULE_ALIASES[s])
    rules = {r for r in s.split(",") if r}
    bad = rules - {"ln", "identity", "ah"}
    if bad:
        fail(f"unknown rule(s) {sorted(bad)}; use none|relp|relp-ah or a comma list of ln,identity,ah")
    return frozenset(rules)


def parse_ids(s, cfg):
    try:
        ids = [int(t) for t in s.split(",") if t.strip()]
    except ValueError:
        fail(f"--ids must be comma-separated integers, got {s!r}")
    check_ids(ids, cfg, "--ids")
    return torch.tensor([ids])


def check_ids(ids, cfg, what):
    if not ids:
        fail(f"{what}: empty token list")
    if len(ids) > cfg["n_ctx"]:
        fail(f"{what}: {len(ids)} tokens exceed n_positions={cfg['n_ctx']}")
    bad = [t for t in ids if not 0 <= t < cfg["vocab"]]
    if bad:
        fail(f"{what}: token ids {bad} outside [0, {cfg['vocab']})")


def _clean(v):
    if isinstance(v, list):
        return [_clean(u) for u in v]
    return None if isinstance(v, float) and not math.isfinite(v) else v


def cmd_logits(a, cfg, P):
    with torch.no_grad():
        logits = forward(cfg, P, parse_ids(a.ids, cfg))[0]
    return {"logits": _clean((logits if a.all_positions else logits[-1]).tolist())}


def cmd_cache(a, cfg, P):
    store = {}
    with torch.no_grad():
        forward(cfg, P, parse_ids(a.ids, cfg), hook=recorder(store))
    names = [n for n in a.names.split(",") if n]
    missing = [n for n in names if n not in store]
    if missing:
        fail(f"unknown hook name(s) {missing}")
    return {"cache": {n: _clean(store[n][0].tolist()) for n in names}}


def load_pairs(path, cfg):
    with open(path) as f:
        pairs = json.load(f)["pairs"]
    if not pairs:
        fail(f"{path}: no pairs")
    T = len(pairs[0]["clean_ids"])
    for i, pr in enumerate(pairs):
        for key in ("clean_ids", "corrupt_ids"):
            check_ids(pr[key], cfg, f"{path}: pairs[{i}].{key}")
            if len(pr[key]) != T:
                fail(f"{path}: pairs[{i}].{key} has {len(pr[key])} tokens, pairs[0].clean_ids has {T}; "
                     "all prompts must have the same length")
        check_ids([pr["answer_id"], pr["wrong_id"]], cfg, f"{path}: pairs[{i}] answer_id/wrong_id")
    ids = lambda key: torch.tensor([pr[key] for pr in pairs])
    return ids("clean_ids"), ids("corrupt_ids"), torch.tensor([pr["answer_id"] for pr in pairs]), \
        torch.tensor([pr["wrong_id"] for pr in pairs])


def cmd_patch(a, cfg, P):
    clean, corrupt, ans, wrong = load_pairs(a.pairs, cfg)
    B, T = clean.shape
    L = cfg["n_layer"]
    rows = torch.arange(B)
    ld = lambda logits: (logits[rows, -1, ans] - logits[rows, -1, wrong]).mean()  # batch-mean logit diff
    methods = [m for m in a.methods.split(",") if m]
    comps = [c for c in a.components.split(",") if c]
    for m in methods:
        if m not in ("activation", "atp", "relp"):
            fail(f"unknown method {m!r}; use activation, atp, relp")
    # z is per head: blocks.{l}.attn.hook_z [b, pos, head, d_head], scored per (layer, head).
    names = lambda c: [f"blocks.{l}.attn.hook_z" if c == "z" else f"blocks.{l}.hook_{c}" for l in range(L)]
    if "z" in comps and "activation" in methods:
        fail("component 'z' is supported for atp and relp only (per-head activation patching is not implemented here)")
    cache_clean, cache_corr = {}, {}
    with torch.no_grad():
        ld_clean = ld(forward(cfg, P, clean, hook=recorder(cache_clean))).item()
        ld_corr = ld(forward(cfg, P, corrupt, hook=recorder(cache_corr))).item()
    for c in comps:
        if c == "z":
            continue
        if names(c)[0] not in cache_clean or cache_clean[names(c)[0]].shape != (B, T, cfg["d"]):
            fail(f"component {c!r} is not a [batch, pos, d_model] hook (try resid_pre, attn_out, mlp_out)")
    if a.raw_metric:
        metric = lambda logits: ld(logits)
    else:
        if abs(ld_clean - ld_corr) < 1e-12:
            fail(f"clean and corrupt logit differences are equal ({ld_clean}); cannot normalise (use --raw-metric)")
        metric = lambda logits: (ld(logits) - ld_corr) / (ld_clean - ld_corr)
    # denoising: base run = corrupt, patched-in source = clean; noising is the reverse
    base_ids, base, src = (corrupt, cache_corr, cache_clean) if a.direction == "denoising" else \
        (clean, cache_clean, cache_corr)
    freeze = {f for f in a.freeze.split(",") if f}
    if freeze - {"ln", "act", "attn"}:
        fail(f"--freeze takes ln,act,attn; got {a.freeze!r}")
    scores = {}
    if "activation" in methods:
        scores["activation"] = {c: [[activation_patch(cfg, P, base_ids, base, src, metric, name, p, a.alpha, freeze)
                                     for p in range(T)] for name in names(c)] for c in comps}
    for m, rules in (("atp", frozenset()), ("relp", parse_rules(a.rules))):
        if m not in methods:
            continue
        probes = {}

        def probe(name, x):  # x + 0 with a zero leaf: its gradient is dm/dx (through the chosen rules)
            if name.startswith("blocks.") and any(name in names(c) for c in comps):
                probes[name] = torch.zeros_like(x, requires_grad=True)
                return x + probes[name]
            return x
        value = metric(forward(cfg, P, base_ids, rules=rules, hook=probe))
        order = list(probes)
        grads = dict(zip(order, torch.autograd.grad(value, [probes[n] for n in order])))
        red = lambda c: (0, 1, 3) if c == "z" else (0, 2)  # z: sum over batch, pos, d_head -> [head]
        scores[m] = {c: [((src[n] - base[n]) * grads[n]).sum(red(c)).tolist() for n in names(c)] for c in comps}
    return {"metric": {"clean": ld_clean, "corrupt": ld_corr}, "scores": scores}


def activation_patch(cfg, P, ids, base, src, metric, name, pos, alpha, freeze):
    """Metric of the base run with `name` at `pos` set to base + alpha*(src - base), all prompts at once.
    freeze: LN scales / activation ratios / attention patterns held at the base run's values."""
    cur = {}

    def hook(n, x):
        if n == name:
            x = x.clone()
            x[:, pos] = base[n][:, pos] + alpha * (src[n][:, pos] - base[n][:, pos])
        elif ("ln" in freeze and n.endswith("hook_scale")) or ("attn" in freeze and n.endswith("hook_pattern")):
            x = base[n]
        elif "act" in freeze and n.endswith("mlp.hook_post"):
            pre_n = n.replace("hook_post", "hook_pre")
            x = tilde(cur[pre_n]) * (base[n] / tilde(base[pre_n]))
        cur[n] = x
        return x
    with torch.no_grad():
        return metric(forward(cfg, P, ids, hook=hook)).item()


def cmd_ld(a, cfg, P):
    """Per-pair logit differences logit[answer] - logit[wrong] at the last position, clean and corrupt."""
    clean, corrupt, ans, wrong = load_pairs(a.pairs, cfg)
    rows = torch.arange(len(ans))
    with torch.no_grad():
        ld = lambda ids: (lambda lg: (lg[rows, -1, ans] - lg[rows, -1, wrong]).tolist())(forward(cfg, P, ids))
        return {"clean": ld(clean), "corrupt": ld(corrupt)}


def cmd_lrp(a, cfg, P):
    ids = parse_ids(a.ids, cfg)
    check_ids([a.target] + ([a.contrast] if a.contrast is not None else []), cfg, "--target/--contrast")
    store = {}

    def probe(name, x):
        if name == "blocks.0.hook_resid_pre":  # = hook_embed + hook_pos_embed
            x = x + torch.zeros_like(x, requires_grad=True)
            store["probe"], store["x"] = x, x
        return x
    logits = forward(cfg, P, ids, rules=parse_rules(a.rules), hook=probe)
    out = logits[0, -1, a.target] - (logits[0, -1, a.contrast] if a.contrast is not None else 0)
    (g,) = torch.autograd.grad(out, store["probe"])
    return {"relevance": (store["x"].detach() * g)[0].sum(-1).tolist(), "output": out.item()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["logits", "cache", "patch", "lrp", "ld"])
    ap.add_argument("--model", required=True, help="HF GPT-2 directory (config.json + safetensors)")
    ap.add_argument("--float32", action="store_true", help="compute in float32 instead of float64")
    ap.add_argument("--ids", help="comma-separated token ids (logits, cache, lrp)")
    ap.add_argument("--all-positions", action="store_true", help="logits: all positions, not just the last")
    ap.add_argument("--names", default="", help="cache: comma-separated hook names")
    ap.add_argument("--pairs", help="patch: JSON file {pairs:[{clean_ids,corrupt_ids,answer_id,wrong_id}]}")
    ap.add_argument("--methods", default="activation,atp,relp")
    ap.add_argument("--components", default="resid_pre,attn_out,mlp_out")
    ap.add_argument("--rules", default="relp", help="none | ln | relp | relp-ah | comma list of ln,identity,ah")
    ap.add_argument("--direction", choices=["denoising", "noising"], default="denoising")
    ap.add_argument("--alpha", type=float, default=1.0, help="activation: patch base + alpha*(source - base)")
    ap.add_argument("--freeze", default="", help="activation: hold ln,act,attn at base-run values (tests)")
    ap.add_argument("--raw-metric", action="store_true", help="use the batch-mean logit diff, not normalised")
    ap.add_argument("--target", type=int)
    ap.add_argument("--contrast", type=int)
    a = ap.parse_args(argv)
    need = {"logits": ["ids"], "cache": ["ids"], "patch": ["pairs"], "ld": ["pairs"], "lrp": ["ids", "target"]}[a.command]
    for k in need:
        if getattr(a, k) is None:
            fail(f"{a.command} needs --{k}")
    torch.set_num_threads(int(os.environ.get("RELP_TORCH_THREADS", "1")))
    cfg, P = load_model(a.model, torch.float32 if a.float32 else torch.float64)
    cmd = {"logits": cmd_logits, "cache": cmd_cache, "patch": cmd_patch, "ld": cmd_ld, "lrp": cmd_lrp}[a.command]
    json.dump(cmd(a, cfg, P), sys.stdout, allow_nan=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
