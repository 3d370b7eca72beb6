#!/usr/bin/python3
"""Independent PyTorch reference of Hugging Face semantics for gpt2, gpt_neox (Pythia), llama, qwen2,
mistral and gemma2 (written from scratch from the transformers modelling code; float64 by default).
It reads an HF folder (config.json + safetensors, sharded or not; F32/F16/BF16) by its NATIVE names.

Usage: python3 hf_reference.py COMMAND --model DIR [options]; prints one JSON object on stdout.
  info                                              -> {"model_type", "config": parsed config}
  logits --ids 1,2,3 [--all-positions]              -> {"logits": [...]} (or [pos][vocab])
  cache  --ids 1,2,3 --names a,b                    -> {"cache": {name: nested lists}} (batch 1; -inf -> null)
  grad   --ids 1,2,3 --names a,b --target ID [--contrast ID] [--rules R]
                                                    -> {"grad": {name: d(logit[target]-logit[contrast])/d act},
                                                        "value": that metric} (last position, batch 1)
  patch  --pairs FILE [--methods activation,atp,relp] [--rules relp] [--components resid_pre,attn_out,mlp_out]
         [--direction denoising|noising] [--alpha A] [--freeze ln,act,half,attn] [--raw-metric]
                                                    -> {"metric": {...}, "scores": {method: {component: [layer][pos]}}}
  lrp    --ids ... --target ID [--contrast ID] [--rules relp]
                                                    -> {"relevance": [pos], "output": value}
  ld     --pairs FILE                               -> {"clean": [LD per pair], "corrupt": [LD per pair]}
  batch  --jobs FILE                                -> {"results": {id: output or {"error": message}}}
         FILE: {"jobs": {id: [command, "--model", DIR, ...]}}: many commands in one process (one torch import)
Pairs file: {"pairs": [{"clean_ids", "corrupt_ids", "answer_id", "wrong_id"}]}, equal lengths.
Metric: LD = logit[answer] - logit[wrong] at the last position, batch mean; normalised
m = (LD - LD_corrupt) / (LD_clean - LD_corrupt) unless --raw-metric. activation = m of the base run
(corrupt for denoising, clean for noising) with one (layer, pos) patched for all prompts at once;
atp/relp = sum over batch and d_model of (a_source - a_base) * dm/da at the base run.
Rules (--rules): none | ln | relp (= ln,identity,half, the RelP code's default) | relp-ah (+ ah) or a comma
list of ln (every norm's scale detached, incl. gemma2's four and the final one), identity (MLP activation:
x~ * stopgrad(act(x)/x~)), half (gated product g as g/2 + stopgrad(g/2)), ah (attention pattern detached).
--freeze (tests): hold norm scales / activation ratios / half the gated product / patterns at base-run values.
Hooks follow TransformerLens: hook_embed (gemma2: x sqrt(d)), hook_pos_embed (gpt2), blocks.{l}.hook_resid_pre,
hook_resid_mid (not for parallel blocks), hook_resid_post, hook_attn_out, hook_mlp_out (gemma2: after the post
norm, i.e. what is added to the stream), ln1/ln2/ln1_post/ln2_post/ln_final .hook_scale [pos,1] and
.hook_normalized, attn.hook_q [pos,H,dh], attn.hook_k/v [pos,H_kv,dh], attn.hook_rot_q/rot_k, attn.hook_attn_scores,
attn.hook_pattern [H,q,k], attn.hook_z, mlp.hook_pre (gate pre-activation), mlp.hook_pre_linear (up, gated only),
mlp.hook_act (act(gate), gated only; not a TransformerLens name), mlp.hook_post.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16, "BOOL": np.uint8}
RULE_ALIASES = {"none": set(), "relp": {"ln", "identity", "half"}, "relp-ah": {"ln", "identity", "half", "ah"}}
ALL_RULES = {"ln", "identity", "half", "ah"}
TANH_GELUS = ("gelu_new", "gelu_fast", "gelu_pytorch_tanh")
MODEL_TYPES = ("gpt2", "gpt_neox", "llama", "qwen2", "mistral", "gemma2")


def fail(msg):
    raise SystemExit(f"hf_reference: {msg}")


# ---------------------------------------------------------------- loading
class LazyTensor:
    """One tensor of a safetensors file, decoded only when asked (a multi-GB checkpoint is never
    held whole: the file is memory-mapped, and each tensor converted once, to the dtype asked)."""

    def __init__(self, mm, start, end, dt, shape, path, name):
        self.mm, self.start, self.end, self.dt, self.shape, self.path, self.name = mm, start, end, dt, tuple(shape), path, name

    def numpy(self):
        arr = np.frombuffer(self.mm[self.start:self.end], dtype=np.dtype(ST_DTYPES[self.dt]).newbyteorder("<"))
        if self.dt == "BF16":  # bf16 is the top half of a float32
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        if arr.size != int(np.prod(self.shape, dtype=np.int64)):
            fail(f"{self.path}: tensor {self.name} has {arr.size} values for shape {list(self.shape)}")
        return arr.reshape(self.shape)


def read_safetensors(path):
    """Parse a .safetensors file (u64 LE header length, JSON header, raw little-endian data) into
    lazily decoded tensors over a memory map."""
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    if mm.size < 8:
        fail(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", mm[:8].tobytes())
    header = json.loads(mm[8:8 + n].tobytes().decode("utf-8"))
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        if dt not in ST_DTYPES:
            fail(f"{path}: tensor {name} has unsupported dtype {dt}")
        b, e = info["data_offsets"]
        out[name] = LazyTensor(mm, 8 + n + b, 8 + n + e, dt, info["shape"], path, name)
    return out


def parse_config(c, model_dir):
    """HF config.json -> the quantities the forward needs, with transformers' defaults."""
    t = c.get("model_type")
    if t not in MODEL_TYPES:
        fail(f"{model_dir}/config.json: unsupported model_type {t!r} (supported: {', '.join(MODEL_TYPES)})")

    def req(key):
        if c.get(key) is None:
            fail(f"{model_dir}/config.json: missing {key}")
        return c[key]
    if c.get("rope_scaling") is not None:
        fail(f"{model_dir}/config.json: rope_scaling is not supported")
    if t == "gpt2":
        d, H, L = req("n_embd"), req("n_head"), req("n_layer")
        if c.get("scale_attn_weights") is False or c.get("scale_attn_by_inverse_layer_idx"):
            fail("config.json: only standard 1/sqrt(d_head) attention scaling is supported")
        return dict(type=t, L=L, d=d, H=H, Hkv=H, dh=d // H, M=c.get("n_inner") or 4 * d, n_ctx=req("n_positions"),
                    eps=c.get("layer_norm_epsilon", 1e-5), act=c.get("activation_function", "gelu_new"), norm="layer",
                    rot=0, theta=None, parallel=False, gated=False, scale=(d // H) ** -0.5, attn_cap=None,
                    final_cap=None, window=[None] * L, embed_scale=1.0, tied=c.get("tie_word_embeddings", True))
    d, H, L = req("hidden_size"), req("num_attention_heads"), req("num_hidden_layers")
    if t == "gpt_neox":
        dh = d // H
        return dict(type=t, L=L, d=d, H=H, Hkv=H, dh=dh, M=req("intermediate_size"), n_ctx=req("max_position_embeddings"),
                    eps=c.get("layer_norm_eps", 1e-5), act=c.get("hidden_act", "gelu"), norm="layer",
                    rot=int(dh * c.get("rotary_pct", 0.25)), theta=c.get("rotary_emb_base", 10000),
                    parallel=c.get("use_parallel_residual", True), gated=False, scale=dh ** -0.5, attn_cap=None,
                    final_cap=None, window=[None] * L, embed_scale=1.0, tied=False)
    Hkv = c.get("num_key_value_heads") or H
    if H % Hkv:
        fail(f"{model_dir}/config.json: num_key_value_heads={Hkv} does not divide num_attention_heads={H}")
    dh = c.get("head_dim") or d // H
    gemma = t == "gemma2"
    window = [None] * L
    if gemma and c.get("sliding_window") is not None:
        window = [c["sliding_window"] if l % 2 == 0 else None for l in range(L)]  # HF: is_sliding = not layer_idx % 2
    if t == "mistral" and c.get("sliding_window") is not None:
        window = [c["sliding_window"]] * L
    if t == "qwen2" and c.get("use_sliding_window"):
        fail(f"{model_dir}/config.json: qwen2 use_sliding_window=true is not supported")
    act = (c.get("hidden_activation") or c.get("hidden_act") or "gelu_pytorch_tanh") if gemma else c.get("hidden_act", "silu")
    return dict(type=t, L=L, d=d, H=H, Hkv=Hkv, dh=dh, M=req("intermediate_size"), n_ctx=req("max_position_embeddings"),
                eps=c.get("rms_norm_eps", 1e-6), act=act, norm="gemma" if gemma else "rms", rot=dh,
                theta=c.get("rope_theta", 10000.0), parallel=False, gated=True,
                scale=(req("query_pre_attn_scalar") if gemma else dh) ** -0.5,
                attn_cap=c.get("attn_logit_softcapping") if gemma else None,
                final_cap=c.get("final_logit_softcapping") if gemma else None, window=window,
                embed_scale=math.sqrt(d) if gemma else 1.0,
                tied=c.get("tie_word_embeddings", gemma),  # LlamaConfig/MistralConfig/Qwen2Config default False
                qkv_bias=t == "qwen2" or bool(c.get("attention_bias")), o_bias=t != "qwen2" and bool(c.get("attention_bias")),
                mlp_bias=bool(c.get("mlp_bias")))


def load_model(model_dir, dtype):
    """-> (cfg, params) with params in canonical [out, in] nn.Linear orientation, read from HF native names."""
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        fail(f"{model_dir}: no config.json")
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = parse_config(json.load(f), model_dir)
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
        sd.update(read_safetensors(os.path.join(model_dir, fn)))
    if cfg["type"] == "gpt2":
        sd = {k[len("transformer."):] if k.startswith("transformer.") else k: v for k, v in sd.items()}
    d, H, Hkv, dh, M = cfg["d"], cfg["H"], cfg["Hkv"], cfg["dh"], cfg["M"]

    def p(name, shape):
        if name not in sd:
            fail(f"{model_dir}: missing tensor {name}")
        if list(sd[name].shape) != list(shape):
            fail(f"{model_dir}: tensor {name} has shape {list(sd[name].shape)}, expected {list(shape)}")
        return torch.tensor(sd[name].numpy(), dtype=dtype)
    zeros = lambda n: torch.zeros(n, dtype=dtype)
    P = {"blocks": []}
    t = cfg["type"]
    for l in range(cfg["L"]):
        if t == "gpt2":
            h = f"h.{l}."
            w_qkv = p(h + "attn.c_attn.weight", (d, 3 * d)).T  # Conv1D stores [in, out]
            b_qkv = p(h + "attn.c_attn.bias", (3 * d,))
            blk = dict(ln1=(p(h + "ln_1.weight", (d,)), p(h + "ln_1.bias", (d,))),
                       ln2=(p(h + "ln_2.weight", (d,)), p(h + "ln_2.bias", (d,))),
                       q=(w_qkv[:d], b_qkv[:d]), k=(w_qkv[d:2 * d], b_qkv[d:2 * d]), v=(w_qkv[2 * d:], b_qkv[2 * d:]),
                       o=(p(h + "attn.c_proj.weight", (d, d)).T, p(h + "attn.c_proj.bias", (d,))),
                       up=(p(h + "mlp.c_fc.weight", (d, M)).T, p(h + "mlp.c_fc.bias", (M,))),
                       down=(p(h + "mlp.c_proj.weight", (M, d)).T, p(h + "mlp.c_proj.bias", (d,))))
        elif t == "gpt_neox":
            h = f"gpt_neox.layers.{l}."
            # query_key_value output features are laid out [head, (q, k, v), d_head]
            w = p(h + "attention.query_key_value.weight", (3 * d, d)).reshape(H, 3, dh, d)
            b = p(h + "attention.query_key_value.bias", (3 * d,)).reshape(H, 3, dh)
            part = lambda s: (w[:, s].reshape(H * dh, d), b[:, s].reshape(H * dh))
            blk = dict(ln1=(p(h + "input_layernorm.weight", (d,)), p(h + "input_layernorm.bias", (d,))),
                       ln2=(p(h + "post_attention_layernorm.weight", (d,)), p(h + "post_attention_layernorm.bias", (d,))),
                       q=part(0), k=part(1), v=part(2),
                       o=(p(h + "attention.dense.weight", (d, d)), p(h + "attention.dense.bias", (d,))),
                       up=(p(h + "mlp.dense_h_to_4h.weight", (M, d)), p(h + "mlp.dense_h_to_4h.bias", (M,))),
                       down=(p(h + "mlp.dense_4h_to_h.weight", (d, M)), p(h + "mlp.dense_4h_to_h.bias", (d,))))
        else:
            h = f"model.layers.{l}."
            lin = lambda name, o, i, bias: (p(h + name + ".weight", (o, i)), p(h + name + ".bias", (o,)) if bias else zeros(o))
            blk = dict(ln1=(p(h + "input_layernorm.weight", (d,)), None),
                       q=lin("self_attn.q_proj", H * dh, d, cfg["qkv_bias"]), k=lin("self_attn.k_proj", Hkv * dh, d, cfg["qkv_bias"]),
                       v=lin("self_attn.v_proj", Hkv * dh, d, cfg["qkv_bias"]), o=lin("self_attn.o_proj", d, H * dh, cfg["o_bias"]),
                       gate=lin("mlp.gate_proj", M, d, cfg["mlp_bias"]), up=lin("mlp.up_proj", M, d, cfg["mlp_bias"]),
                       down=lin("mlp.down_proj", d, M, cfg["mlp_bias"]))
            if t == "gemma2":
                blk["ln1_post"] = (p(h + "post_attention_layernorm.weight", (d,)), None)
                blk["ln2"] = (p(h + "pre_feedforward_layernorm.weight", (d,)), None)
                blk["ln2_post"] = (p(h + "post_feedforward_layernorm.weight", (d,)), None)
            else:
                blk["ln2"] = (p(h + "post_attention_layernorm.weight", (d,)), None)
        P["blocks"].append(blk)
    if t == "gpt2":
        vocab = c_vocab(sd, "wte.weight", model_dir)
        P["embed"] = p("wte.weight", (vocab, d))
        P["pos"] = p("wpe.weight", (cfg["n_ctx"], d))
        P["ln_f"] = (p("ln_f.weight", (d,)), p("ln_f.bias", (d,)))
        P["unembed"] = P["embed"] if cfg["tied"] else p("lm_head.weight", (vocab, d))
    elif t == "gpt_neox":
        P["embed"] = p("gpt_neox.embed_in.weight", (c_vocab(sd, "gpt_neox.embed_in.weight", model_dir), d))
        P["ln_f"] = (p("gpt_neox.final_layer_norm.weight", (d,)), p("gpt_neox.final_layer_norm.bias", (d,)))
        P["unembed"] = p("embed_out.weight", (P["embed"].shape[0], d))
    else:
        P["embed"] = p("model.embed_tokens.weight", (c_vocab(sd, "model.embed_tokens.weight", model_dir), d))
        P["ln_f"] = (p("model.norm.weight", (d,)), None)
        P["unembed"] = P["embed"] if cfg["tied"] else p("lm_head.weight", (P["embed"].shape[0], d))
    cfg["vocab"] = P["embed"].shape[0]
    return cfg, P


def c_vocab(sd, name, model_dir):
    if name not in sd:
        fail(f"{model_dir}: missing tensor {name}")
    return sd[name].shape[0]


# ---------------------------------------------------------------- forward
def activation(x, kind):
    if kind in TANH_GELUS:
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    if kind == "gelu":
        return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    if kind in ("silu", "swish"):
        return x * torch.sigmoid(x)
    if kind == "relu":
        return torch.relu(x)
    fail(f"unsupported activation {kind!r}")


def tilde(x):
    """x~ = x + (1[x==0] + sign(x)) * 1e-6: x pushed away from zero (Identity-rule denominator)."""
    return x + ((x == 0).to(x.dtype) + torch.sign(x)) * 1e-6


def norm(cfg, x, wb, rules, hook, prefix):
    """LayerNorm (w·(x-μ)/σ + b), RMSNorm (w·x/rms) or Gemma's RMSNorm ((1+w)·x/rms); the LN-rule detaches σ/rms."""
    if cfg["norm"] == "layer":
        x = x - x.mean(-1, keepdim=True)
    scale = hook(prefix + "hook_scale", (x.pow(2).mean(-1, keepdim=True) + cfg["eps"]).sqrt())  # [b, pos, 1]
    if "ln" in rules:
        scale = scale.detach()
    w, b = wb
    if cfg["norm"] == "layer":
        return hook(prefix + "hook_normalized", x / scale * w + b)
    gain = 1.0 + w if cfg["norm"] == "gemma" else w
    return hook(prefix + "hook_normalized", x / scale) * gain


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), -1)


def rope(cfg, x, T):
    """Rotary embedding on the first cfg['rot'] dims of each head; x: [b, pos, heads, dh]."""
    R = cfg["rot"]
    inv_freq = 1.0 / (cfg["theta"] ** (torch.arange(0, R, 2, dtype=torch.float64) / R))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)  # [pos, R/2]
    emb = torch.cat((freqs, freqs), -1)  # [pos, R]
    cos, sin = emb.cos().to(x.dtype)[None, :, None, :], emb.sin().to(x.dtype)[None, :, None, :]
    xr, xp = x[..., :R], x[..., R:]
    return torch.cat((xr * cos + rotate_half(xr) * sin, xp), -1)


def linear(x, wb):
    return x @ wb[0].T + wb[1]


def forward(cfg, P, ids, rules=frozenset(), hook=lambda name, x: x):
    """ids: LongTensor [batch, pos] -> logits [batch, pos, vocab]. hook(name, x) may observe/replace x."""
    B, T = ids.shape
    H, Hkv, dh, d = cfg["H"], cfg["Hkv"], cfg["dh"], cfg["d"]
    x = hook("hook_embed", P["embed"][ids] * cfg["embed_scale"])  # [b, pos, d]
    if P.get("pos") is not None:
        x = x + hook("hook_pos_embed", P["pos"][:T].unsqueeze(0).expand(B, T, d))
    qi = torch.arange(T)[:, None]
    ki = torch.arange(T)[None, :]
    for l, blk in enumerate(P["blocks"]):
        n = f"blocks.{l}."
        x = hook(n + "hook_resid_pre", x)
        h = norm(cfg, x, blk["ln1"], rules, hook, n + "ln1.")
        q = hook(n + "attn.hook_q", linear(h, blk["q"]).reshape(B, T, H, dh))
        k = hook(n + "attn.hook_k", linear(h, blk["k"]).reshape(B, T, Hkv, dh))
        v = hook(n + "attn.hook_v", linear(h, blk["v"]).reshape(B, T, Hkv, dh))
        if cfg["rot"]:
            q = hook(n + "attn.hook_rot_q", rope(cfg, q, T))
            k = hook(n + "attn.hook_rot_k", rope(cfg, k, T))
        rep = H // Hkv  # repeat_kv: kv head j serves query heads j*rep .. j*rep+rep-1
        k_full, v_full = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k_full) * cfg["scale"]
        if cfg["attn_cap"]:
            scores = torch.tanh(scores / cfg["attn_cap"]) * cfg["attn_cap"]  # soft-cap before the mask
        masked = ki > qi
        if cfg["window"][l] is not None:
            masked = masked | (ki <= qi - cfg["window"][l])
        scores = hook(n + "attn.hook_attn_scores", scores.masked_fill(masked, float("-inf")))
        pattern = torch.softmax(scores, -1)  # [b, head, q, k]
        if "ah" in rules:
            pattern = pattern.detach()
        pattern = hook(n + "attn.hook_pattern", pattern)
        z = hook(n + "attn.hook_z", torch.einsum("bhqk,bkhd->bqhd", pattern, v_full))  # [b, pos, head, dh]
        attn = linear(z.reshape(B, T, H * dh), blk["o"])
        if "ln1_post" in blk:
            attn = norm(cfg, attn, blk["ln1_post"], rules, hook, n + "ln1_post.")
        attn_out = hook(n + "hook_attn_out", attn)
        if cfg["parallel"]:
            mlp_in = x
        else:
            x = hook(n + "hook_resid_mid", x + attn_out)
            mlp_in = x
        h = norm(cfg, mlp_in, blk["ln2"], rules, hook, n + "ln2.")
        if cfg["gated"]:
            pre = hook(n + "mlp.hook_pre", linear(h, blk["gate"]))
            up = hook(n + "mlp.hook_pre_linear", linear(h, blk["up"]))
            a = activation(pre, cfg["act"])
            if "identity" in rules:
                xt = tilde(pre)
                a = xt * (a / xt).detach()
            a = hook(n + "mlp.hook_act", a)
            g = a * up
            if "half" in rules:  # Half-rule: each factor of the product gets half its gradient
                g = g / 2 + (g / 2).detach()
            post = hook(n + "mlp.hook_post", g)
        else:
            pre = hook(n + "mlp.hook_pre", linear(h, blk["up"]))
            post = activation(pre, cfg["act"])
            if "identity" in rules:
                xt = tilde(pre)
                post = xt * (post / xt).detach()
            post = hook(n + "mlp.hook_post", post)
        mlp = linear(post, blk["down"])
        if "ln2_post" in blk:
            mlp = norm(cfg, mlp, blk["ln2_post"], rules, hook, n + "ln2_post.")
        mlp_out = hook(n + "hook_mlp_out", mlp)
        x = hook(n + "hook_resid_post", (x + attn_out + mlp_out) if cfg["parallel"] else (x + mlp_out))
    x = norm(cfg, x, P["ln_f"], rules, hook, "ln_final.")
    logits = x @ P["unembed"].T
    if cfg["final_cap"]:
        logits = torch.tanh(logits / cfg["final_cap"]) * cfg["final_cap"]
    return logits


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
    bad = rules - ALL_RULES
    if bad:
        fail(f"unknown rule(s) {sorted(bad)}; use none|ln|relp|relp-ah or a comma list of ln,identity,half,ah")
    return frozenset(rules)


def check_ids(ids, cfg, what):
    if not ids:
        fail(f"{what}: empty token list")
    if len(ids) > cfg["n_ctx"]:
        fail(f"{what}: {len(ids)} tokens exceed the {cfg['n_ctx']} positions of the model")
    bad = [t for t in ids if not 0 <= t < cfg["vocab"]]
    if bad:
        fail(f"{what}: token ids {bad} outside [0, {cfg['vocab']})")


def parse_ids(s, cfg):
    try:
        ids = [int(t) for t in s.split(",") if t.strip()]
    except ValueError:
        fail(f"--ids must be comma-separated integers, got {s!r}")
    check_ids(ids, cfg, "--ids")
    return torch.tensor([ids])


def _clean(v):
    if isinstance(v, list):
        return [_clean(u) for u in v]
    return None if isinstance(v, float) and not math.isfinite(v) else v


def cmd_info(a, cfg, P):
    return {"model_type": cfg["type"], "config": {k: v for k, v in cfg.items()}}


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
        fail(f"unknown hook name(s) {missing} for {cfg['type']}")
    return {"cache": {n: _clean(store[n][0].tolist()) for n in names}}


def cmd_grad(a, cfg, P):
    ids = parse_ids(a.ids, cfg)
    check_ids([a.target] + ([a.contrast] if a.contrast is not None else []), cfg, "--target/--contrast")
    names = [n for n in a.names.split(",") if n]
    probes = {}

    def probe(name, x):
        if name in names:
            probes[name] = torch.zeros_like(x, requires_grad=True)
            return x + probes[name]
        return x
    logits = forward(cfg, P, ids, rules=parse_rules(a.rules), hook=probe)
    missing = [n for n in names if n not in probes]
    if missing:
        fail(f"unknown hook name(s) {missing} for {cfg['type']}")
    out = logits[0, -1, a.target] - (logits[0, -1, a.contrast] if a.contrast is not None else 0)
    grads = torch.autograd.grad(out, [probes[n] for n in names], allow_unused=True)
    return {"grad": {n: (g[0] if g is not None else torch.zeros_like(probes[n][0])).tolist() for n, g in zip(names, grads)},
            "value": out.item()}


def load_pairs(path, cfg):
    try:
        with open(path) as f:
            pairs = json.load(f)["pairs"]
    except (OSError, ValueError, KeyError) as e:
        fail(f"{path}: cannot read pairs ({e})")
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
    L = cfg["L"]
    rows = torch.arange(B)
    ld = lambda logits: (logits[rows, -1, ans] - logits[rows, -1, wrong]).mean()  # batch-mean logit diff
    methods = [m for m in a.methods.split(",") if m]
    comps = [c for c in a.components.split(",") if c]
    for m in methods:
        if m not in ("activation", "atp", "relp"):
            fail(f"unknown method {m!r}; use activation, atp, relp")
    names = lambda c: [f"blocks.{l}.hook_{c}" for l in range(L)]
    cache_clean, cache_corr = {}, {}
    with torch.no_grad():
        ld_clean = ld(forward(cfg, P, clean, hook=recorder(cache_clean))).item()
        ld_corr = ld(forward(cfg, P, corrupt, hook=recorder(cache_corr))).item()
    for c in comps:
        if names(c)[0] not in cache_clean or cache_clean[names(c)[0]].shape != (B, T, cfg["d"]):
            extra = " (parallel blocks have no resid_mid)" if c == "resid_mid" and cfg["parallel"] else ""
            fail(f"component {c!r} is not a [batch, pos, d_model] hook of {cfg['type']}{extra} "
                 "(try resid_pre, attn_out, mlp_out)")
    if a.raw_metric:
        metric = lambda logits: ld(logits)
    else:
        if abs(ld_clean - ld_corr) < 1e-12:
            fail(f"clean and corrupt logit differences are equal ({ld_clean}); cannot normalise (use --raw-metric)")
        metric = lambda logits: (ld(logits) - ld_corr) / (ld_clean - ld_corr)
    base_ids, base, src = (corrupt, cache_corr, cache_clean) if a.direction == "denoising" else \
        (clean, cache_clean, cache_corr)
    freeze = {f for f in a.freeze.split(",") if f}
    if freeze - {"ln", "act", "half", "attn"}:
        fail(f"--freeze takes ln,act,half,attn; got {a.freeze!r}")
    scores = {}
    if "activation" in methods:
        scores["activation"] = {c: [[activation_patch(cfg, P, base_ids, base, src, metric, name, p, a.alpha, freeze)
                                     for p in range(T)] for name in names(c)] for c in comps}
    for m, rules in (("atp", frozenset()), ("relp", parse_rules(a.rules))):
        if m not in methods:
            continue
        probes = {}

        def probe(name, x):  # x + 0 with a zero leaf: its gradient is dm/dx (through the chosen rules)
            if any(name in names(c) for c in comps):
                probes[name] = torch.zeros_like(x, requires_grad=True)
                return x + probes[name]
            return x
        value = metric(forward(cfg, P, base_ids, rules=rules, hook=probe))
        order = list(probes)
        grads = dict(zip(order, torch.autograd.grad(value, [probes[n] for n in order], allow_unused=True)))
        g = lambda n: grads[n] if grads[n] is not None else torch.zeros_like(probes[n])
        scores[m] = {c: [((src[n] - base[n]) * g(n)).sum((0, 2)).tolist() for n in names(c)] for c in comps}
    return {"metric": {"clean": ld_clean, "corrupt": ld_corr}, "scores": scores}


def activation_patch(cfg, P, ids, base, src, metric, name, pos, alpha, freeze):
    """Metric of the base run with `name` at `pos` set to base + alpha*(src - base), all prompts at once.
    freeze: norm scales (ln), activation ratios act(x)/x~ (act), half of the gated product (half: g -> (g + g_base)/2)
    and attention patterns (attn) held at the base run's values: the model whose true derivative a rule's is."""
    cur = {}

    def hook(n, x):
        if n == name:
            x = x.clone()
            x[:, pos] = base[n][:, pos] + alpha * (src[n][:, pos] - base[n][:, pos])
        elif ("ln" in freeze and n.endswith("hook_scale")) or ("attn" in freeze and n.endswith("hook_pattern")):
            x = base[n]
        elif "act" in freeze and (n.endswith("mlp.hook_act") or (n.endswith("mlp.hook_post") and not cfg["gated"])):
            pre_n = n.rsplit(".", 1)[0] + ".hook_pre"
            x = tilde(cur[pre_n]) * (base[n] / tilde(base[pre_n]))
        elif "half" in freeze and n.endswith("mlp.hook_post") and cfg["gated"]:
            x = (x + base[n]) / 2
        cur[n] = x
        return x
    with torch.no_grad():
        return metric(forward(cfg, P, ids, hook=hook)).item()


def cmd_ld(a, cfg, P):
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
        if name == "blocks.0.hook_resid_pre":
            x = x + torch.zeros_like(x, requires_grad=True)
            store["probe"] = x
        return x
    logits = forward(cfg, P, ids, rules=parse_rules(a.rules), hook=probe)
    out = logits[0, -1, a.target] - (logits[0, -1, a.contrast] if a.contrast is not None else 0)
    (g,) = torch.autograd.grad(out, store["probe"])
    return {"relevance": (store["probe"].detach() * g)[0].sum(-1).tolist(), "output": out.item()}


COMMANDS = {"info": cmd_info, "logits": cmd_logits, "cache": cmd_cache, "grad": cmd_grad, "patch": cmd_patch,
            "ld": cmd_ld, "lrp": cmd_lrp}
NEEDS = {"info": [], "logits": ["ids"], "cache": ["ids"], "grad": ["ids", "target"], "patch": ["pairs"],
         "ld": ["pairs"], "lrp": ["ids", "target"], "batch": ["jobs"]}


def parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=list(COMMANDS) + ["batch"])
    ap.add_argument("--model", help="HF directory (config.json + safetensors)")
    ap.add_argument("--float32", action="store_true", help="compute in float32 instead of float64")
    ap.add_argument("--ids", help="comma-separated token ids (logits, cache, grad, lrp)")
    ap.add_argument("--all-positions", action="store_true", help="logits: all positions, not just the last")
    ap.add_argument("--names", default="", help="cache, grad: comma-separated hook names")
    ap.add_argument("--pairs", help="patch, ld: JSON file {pairs:[{clean_ids,corrupt_ids,answer_id,wrong_id}]}")
    ap.add_argument("--methods", default="activation,atp,relp")
    ap.add_argument("--components", default="resid_pre,attn_out,mlp_out")
    ap.add_argument("--rules", default="relp", help="none | ln | relp | relp-ah | comma list of ln,identity,half,ah")
    ap.add_argument("--direction", choices=["denoising", "noising"], default="denoising")
    ap.add_argument("--alpha", type=float, default=1.0, help="activation: patch base + alpha*(source - base)")
    ap.add_argument("--freeze", default="", help="activation: hold ln,act,half,attn at base-run values (tests)")
    ap.add_argument("--raw-metric", action="store_true", help="use the batch-mean logit diff, not normalised")
    ap.add_argument("--target", type=int)
    ap.add_argument("--contrast", type=int)
    ap.add_argument("--jobs", help='batch: JSON file {"jobs": {id: [command, args...]}}; one process, one torch import')
    return ap


def run(argv, models):
    """Parse argv and run one command; models caches loaded checkpoints by (dir, dtype)."""
    a = parser().parse_args(argv)
    for k in NEEDS[a.command] + ([] if a.command == "batch" else ["model"]):
        if getattr(a, k) is None:
            fail(f"{a.command} needs --{k.replace('_', '-')}")
    if a.command == "batch":
        with open(a.jobs) as f:
            jobs = json.load(f)["jobs"]
        out = {}
        for jid, jargv in jobs.items():
            try:
                out[jid] = run(jargv, models)
            except SystemExit as e:  # fail() and argparse errors: report per job, keep going
                out[jid] = {"error": str(e.code) if e.code is not None else "exit"}
        return {"results": out}
    dtype = torch.float32 if a.float32 else torch.float64
    key = (os.path.abspath(a.model), str(dtype))
    if key not in models:
        models[key] = load_model(a.model, dtype)
    cfg, P = models[key]
    return COMMANDS[a.command](a, cfg, P)


def main(argv=None):
    torch.set_num_threads(int(os.environ.get("RELP_TORCH_THREADS", "1")))
    json.dump(run(sys.argv[1:] if argv is None else argv, {}), sys.stdout, allow_nan=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
