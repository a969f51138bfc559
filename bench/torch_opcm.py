#!/usr/bin/env python3
"""PyTorch baseline of one OPCM step, written the way FusionBench's opcm.py runs it (methods.md 1.3-1.4): for every
Linear weight a full SVD of the merged task vector (torch.linalg.svd, full_matrices=True; driver gesvd on CUDA, as
FusionBench's opcm/utils.py), P = U^T tau V with its diagonal and top-left r x r block zeroed, tau~ = U P V^T;
every other parameter is added as it is; then the global rescale to the mean task-vector norm.

Reads one JSON job from stdin:
  {"tensors": [[name, shape], ...], "seed": int, "alpha": float, "warmups": int, "reps": int, "device": "cpu" | "cuda" | "auto"}
and prints one JSON object {"ms", "runs", "svd_ms", "linear_weights", "device", "torch", "threads", "peak_rss_bytes"}
(then {"done": true}). The models (base, M = the first fine-tuned model, the incoming one) are generated in float32
as torch_merge.py does and are not timed, or given as "data": {"base": {name: [values]}, "models": [first, incoming]};
with "emit": true the result also holds the new M as "merged" (the tests compare it with the engine's CPU twin). The step is the second one (t = 2): M and the base stay on the device
between steps, so the timed region is the incoming model's transfer to the device (on CUDA), its task-vector norm,
the projections and the rescale, ending with the new M on the device. svd_ms is the part spent in torch.linalg.svd.
"""
import json
import math
import re
import resource
import statistics
import sys
import time

import torch

from torch_merge import generate

# src/engine/reference/linearWeights.ts: 2-D ".weight" tensors that are not embeddings or norms.
NOT_LINEAR = re.compile(r"embed|(^|\.)(wte|wpe|shared)\.|norm|(^|\.)ln(_[^.]*)?\.", re.IGNORECASE)


def is_linear_weight(name, shape):
    return len(shape) == 2 and (name == "weight" or name.endswith(".weight")) and not NOT_LINEAR.search(name)


def split_rank(s, alpha):
    """Index of the first cumulative singular-value fraction above alpha; 0 when none is (numpy argmax of all-false)."""
    frac = torch.cumsum(s, 0) / s.sum()
    return int(torch.argmax((frac > alpha).int()).item())


def project(delta, tau, alpha, svd):
    u, s, vh = svd(delta)
    r = split_rank(s, alpha)
    p = u.T @ tau @ vh.T
    p.diagonal().fill_(0)
    p[:r, :r] = 0
    return u @ p @ vh


def opcm_step(base, merged, incoming, first_norm, alpha, svd):
    """M_new = theta0 + (N-bar / S) (prev_lambda (M - theta0) + P(tau)), prev_lambda = 1 after the first step."""
    norm = math.sqrt(sum(float((incoming[k] - base[k]).pow(2).sum()) for k in base))
    mean_norm = (first_norm + norm) / 2
    unscaled = {}
    for name, b in base.items():
        delta = merged[name] - b
        tau = incoming[name] - b
        if is_linear_weight(name, b.shape):
            tau = project(delta, tau, alpha, svd)
        unscaled[name] = delta + tau
    s = math.sqrt(sum(float(v.pow(2).sum()) for v in unscaled.values()))
    factor = mean_norm / s
    return {name: base[name] + v * factor for name, v in unscaled.items()}


def run(job):
    want = job.get("device", "auto")
    device = "cuda" if want == "cuda" or (want == "auto" and torch.cuda.is_available()) else "cpu"
    tensors = [(name, tuple(shape)) for name, shape in job["tensors"]]
    if "data" in job:
        given = lambda sd: {name: torch.tensor(sd[name], dtype=torch.float32).reshape(shape) for name, shape in tensors}
        base, (first, incoming) = given(job["data"]["base"]), [given(m) for m in job["data"]["models"]]
    else:
        base, (first, incoming) = generate(tensors, torch.float32, 2, job.get("seed", 1))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    base = {k: v.to(device) for k, v in base.items()}
    merged = {k: v.to(device) for k, v in first.items()}
    first_norm = math.sqrt(sum(float((merged[k] - base[k]).pow(2).sum()) for k in base))
    svd_ms = [0.0]

    def svd(a):
        sync()
        t0 = time.perf_counter()
        out = torch.linalg.svd(a, full_matrices=True, driver="gesvd") if device == "cuda" else torch.linalg.svd(a, full_matrices=True)
        sync()
        svd_ms[0] += (time.perf_counter() - t0) * 1000
        return out

    runs, svds = [], []
    with torch.no_grad():
        for i in range(job["warmups"] + job["reps"]):
            svd_ms[0] = 0.0
            sync()
            t0 = time.perf_counter()
            on_device = {k: v.to(device) for k, v in incoming.items()}
            out = opcm_step(base, merged, on_device, first_norm, job.get("alpha", 0.5), svd)
            sync()
            if i >= job["warmups"]:
                runs.append((time.perf_counter() - t0) * 1000)
                svds.append(svd_ms[0])
    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "threads": torch.get_num_threads()}
    result = {
        "ms": statistics.median(runs),
        "runs": runs,
        "svd_ms": statistics.median(svds),
        "linear_weights": sum(1 for name, shape in tensors if is_linear_weight(name, shape)),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        **info,
    }
    if job.get("emit"):
        result["merged"] = {k: v.cpu().reshape(-1).tolist() for k, v in out.items()}
    print(json.dumps(result), flush=True)
    print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    run(json.load(sys.stdin))
