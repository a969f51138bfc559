#!/usr/bin/env python3
"""PyTorch baseline of the benchmark: the batch merging methods written the way a FusionBench user would write
them (state dicts of tensors, torch ops, flattened global top-k with kthvalue for TIES), timed inside this process.

Reads one JSON job from stdin:
  {"tensors": [[name, shape], ...], "dtype": "F32" | "BF16", "tasks": T, "seed": int,
   "methods": [method id, ...], "warmups": int, "reps": int, "device": "cpu" | "cuda" | "auto"}
and prints one JSON object per method on stdout (then {"done": true}). Models are generated here (not timed), or
given as "data": {"base": {name: [values]}, "models": [{name: [values]}, ...]} (f32, shapes from "tensors"); with
"emit": true each method's object also holds its merged model(s) as "outputs" (the tests compare them with the
engine's CPU reference). The
timed region starts from state dicts in host memory and ends with the merged state dict(s) in the base dtype in
host memory: on CUDA the transfers to and from the GPU are timed too, as the engine's uploads and readbacks are.
Arithmetic is float32 (bf16 inputs are upcast per tensor, the result is rounded back to bf16), as in the engine.
Parameters are each method's defaults in src/engine/methods (kept in DEFAULTS below).
"""
import json
import math
import re
import resource
import statistics
import sys
import time

import torch

DEFAULTS = {
    "task_arithmetic": {"lambda": 0.3},
    "simple_average": {},
    "ties": {"k": 0.2, "lambda": 0.3},
    "dare": {"p": 0.5, "lambda": 0.3},
    "breadcrumbs": {"density": 0.15, "gamma": 0.006, "lambda": 0.2},
    "consensus": {"k": 2, "mask_lambda": 0.6, "lambda": 0.3},
    "tall_masks": {"mask_lambda": 0.6},
    "lines": {"beta": 0.3},
    "magmax": {"lambda": 0.5},
    "slerp": {"t": 0.5},
    "model_stock": {},
}

LAYER = re.compile(r"\.layers\.(\d+)\.")


def generate(tensors, dtype, tasks, seed):
    """Base ~ 0.02 * noise, fine-tuned = base + 0.002 * noise, stored in `dtype` (host memory)."""
    g = torch.Generator().manual_seed(seed)
    base = {}
    models = [dict() for _ in range(tasks)]
    for name, shape in tensors:
        b = (torch.rand(shape, generator=g) - 0.5) * 0.04
        base[name] = b.to(dtype)
        for m in models:
            m[name] = (b + (torch.rand(shape, generator=g) - 0.5) * 0.004).to(dtype)
    return base, models


def to_device(sd, device):
    return {k: v.to(device, non_blocking=False) for k, v in sd.items()}


def task_vector(base, model):
    return {k: model[k].float() - base[k].float() for k in base}


def task_vectors(base, models):
    return [task_vector(base, m) for m in models]


def finish(base, delta):
    """theta0 + delta, in the base dtype."""
    return {k: (base[k].float() + delta[k]).to(base[k].dtype) for k in base}


def task_arithmetic(base, models, p):
    tvs = task_vectors(base, models)
    return finish(base, {k: p["lambda"] * sum(tv[k] for tv in tvs) for k in base})


def simple_average(base, models, p):
    return {k: (sum(m[k].float() for m in models) / len(models)).to(base[k].dtype) for k in base}


def flatten(sd, keys):
    return torch.cat([sd[k].reshape(-1) for k in keys])


def unflatten(vec, like, keys):
    out, at = {}, 0
    for k in keys:
        n = like[k].numel()
        out[k] = vec[at:at + n].reshape(like[k].shape)
        at += n
    return out


def ties(base, models, p):
    # FusionBench ties_merging_utils: flatten (sorted keys), topk_values_mask with kthvalue, resolve_sign, disjoint_merge.
    # The same operations, arranged so that 8 full-size f32 models fit a 24 GiB host: rows filled in place, |x| taken
    # once, kthvalue row by row, trim and disjoint merge in place.
    keys = sorted(base)
    d = sum(base[k].numel() for k in keys)
    trimmed = torch.empty(len(models), d, device=base[keys[0]].device)
    for t, m in enumerate(models):
        trimmed[t] = flatten(task_vector(base, m), keys)
    k = d - int(d * p["k"])
    mag = trimmed.abs()
    kth = torch.stack([row.kthvalue(k).values for row in mag]).unsqueeze(1)
    trimmed.mul_(mag >= kth)
    del mag
    sign = torch.sign(trimmed.sum(dim=0))
    sign[sign == 0] = torch.sign(sign.sum())
    trimmed.mul_(torch.where(sign.unsqueeze(0) > 0, trimmed > 0, trimmed < 0))
    merged = trimmed.sum(dim=0)
    return finish(base, {k: p["lambda"] * v for k, v in unflatten(merged, base, keys).items()})


def dare(base, models, p):
    # FusionBench dare: Bernoulli keep mask per tensor, rescale by 1 / (1 - p), then Task Arithmetic.
    tvs = task_vectors(base, models)
    for tv in tvs:
        for k, v in tv.items():
            tv[k] = v * torch.bernoulli(torch.full_like(v, 1 - p["p"])) / (1 - p["p"])
    return finish(base, {k: p["lambda"] * sum(tv[k] for tv in tvs) for k in base})


def middle_band(v, density, gamma):
    # Model Breadcrumbs (TaskVectorMiddleKeep, rows of the last dimension): drop the int(n*gamma) largest, keep the next int(n*density).
    if v.dim() == 0:
        return v
    n = v.shape[-1]
    rows = v.reshape(-1, n)
    top, keep = int(n * gamma), int(n * density)
    order = rows.abs().argsort(dim=1, descending=True)
    mask = torch.zeros_like(rows, dtype=torch.bool).scatter_(1, order[:, top:top + keep], True)
    return (rows * mask).reshape(v.shape)


def breadcrumbs(base, models, p):
    tvs = task_vectors(base, models)
    return finish(base, {k: p["lambda"] * sum(middle_band(tv[k], p["density"], p["gamma"]) for tv in tvs) for k in base})


def tall_masks_of(tvs, k, lam):
    mtl = sum(tv[k] for tv in tvs)
    return mtl, [tv[k].abs() > lam * (mtl - tv[k]).abs() for tv in tvs]


def consensus(base, models, p):
    # Official tall_masks code: TALL mask per task, keep the weights at least k tasks use.
    tvs = task_vectors(base, models)
    delta = {}
    for k in base:
        mtl, masks = tall_masks_of(tvs, k, p["mask_lambda"])
        delta[k] = p["lambda"] * mtl * (sum(m.to(torch.int32) for m in masks) >= p["k"])
    return finish(base, delta)


def tall_masks(base, models, p):
    tvs = task_vectors(base, models)
    outs = [dict() for _ in models]
    for k in base:
        mtl, masks = tall_masks_of(tvs, k, p["mask_lambda"])
        for t, m in enumerate(masks):
            outs[t][k] = (base[k].float() + mtl * m).to(base[k].dtype)
    return outs


def lines(base, models, p):
    # LiNeS on Task Arithmetic with alpha "auto" (= 1/T there): scale alpha + beta * layer / (L - 1).
    tvs = task_vectors(base, models)
    idx = {k: LAYER.search(k) for k in base}
    layers = 1 + max([int(m.group(1)) for m in idx.values() if m] or [-1])
    alpha = 1 / len(models)

    def depth(k):
        return 0.0 if idx[k] is None or layers <= 1 else min(1.0, int(idx[k].group(1)) / (layers - 1))

    return finish(base, {k: (alpha + p["beta"] * depth(k)) * sum(tv[k] for tv in tvs) for k in base})


def magmax(base, models, p):
    # FusionBench magmax: running max-magnitude selection (a later model wins ties).
    tvs = task_vectors(base, models)
    delta = {}
    for k in base:
        best = tvs[0][k]
        for tv in tvs[1:]:
            best = torch.where(tv[k].abs() >= best.abs(), tv[k], best)
        delta[k] = p["lambda"] * best
    return finish(base, delta)


def slerp(base, models, p):
    # mergekit slerp on the raw weights of the two models.
    a_sd, b_sd = models
    out = {}
    for k in base:
        a, b = a_sd[k].float(), b_sd[k].float()
        na, nb = a.norm(), b.norm()
        dot = torch.sum((a / na if na > 1e-8 else a) * (b / nb if nb > 1e-8 else b))
        t = p["t"]
        if abs(dot) > 0.9995:
            r = (1 - t) * a + t * b
        else:
            theta = torch.arccos(dot)
            s = torch.sin(theta)
            r = torch.sin((1 - t) * theta) / s * a + torch.sin(t * theta) / s * b
        out[k] = r.to(base[k].dtype)
    return out


def model_stock(base, models, p):
    # mergekit model_stock (cosine): mean pairwise cosine of the offsets, t = N cos / (1 + (N - 1) cos).
    n = len(models)
    out = {}
    for k in base:
        b = base[k].float()
        offs = [(m[k].float() - b).reshape(-1) for m in models]
        cos = []
        for i in range(n):
            for j in range(i + 1, n):
                c = torch.dot(offs[i], offs[j]) / max(float(offs[i].norm() * offs[j].norm()), 1e-6)
                cos.append(min(1.0, max(-1.0, float(c))))
        c = sum(cos) / len(cos)
        denom = 1 + (n - 1) * c
        t = 0.0 if denom == 0 else n * c / denom
        mean = sum(m[k].float() for m in models) / n
        out[k] = (t * mean + (1 - t) * b).to(base[k].dtype)
    return out


METHODS = {f.__name__: f for f in [task_arithmetic, simple_average, ties, dare, breadcrumbs, consensus, tall_masks, lines, magmax, slerp, model_stock]}


def run(job):
    dtype = {"F32": torch.float32, "BF16": torch.bfloat16}[job["dtype"]]
    want = job.get("device", "auto")
    device = "cuda" if want == "cuda" or (want == "auto" and torch.cuda.is_available()) else "cpu"
    tensors = [(name, tuple(shape)) for name, shape in job["tensors"]]
    if "data" in job:
        given = lambda sd: {name: torch.tensor(sd[name], dtype=torch.float32).reshape(shape).to(dtype) for name, shape in tensors}
        base, models = given(job["data"]["base"]), [given(m) for m in job["data"]["models"]]
    else:
        base, models = generate(tensors, dtype, job["tasks"], job.get("seed", 1))
    torch.manual_seed(0)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "threads": torch.get_num_threads()}
    for method in job["methods"]:
        fn, params = METHODS[method], DEFAULTS[method]

        def once():
            b, ms = (to_device(base, device), [to_device(m, device) for m in models]) if device == "cuda" else (base, models)
            out = fn(b, ms, params)
            outs = out if isinstance(out, list) else [out]
            if device == "cuda":
                outs = [to_device(o, "cpu") for o in outs]
            sync()
            return outs

        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        runs = []
        with torch.no_grad():
            for i in range(job["warmups"] + job["reps"]):
                sync()
                t0 = time.perf_counter()
                outs = once()
                if i >= job["warmups"]:
                    runs.append((time.perf_counter() - t0) * 1000)
        emitted = {"outputs": [{k: v.float().reshape(-1).tolist() for k, v in o.items()} for o in outs]} if job.get("emit") else {}
        result = {"method": method, "ms": statistics.median(runs), "runs": runs, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, **info, **emitted}
        if device == "cuda":
            result["cuda_peak_bytes"] = torch.cuda.max_memory_allocated()
        print(json.dumps(result), flush=True)
    print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    run(json.load(sys.stdin))
