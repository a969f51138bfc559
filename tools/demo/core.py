"""Pretraining, CLIP-like heads, fine-tuning, evaluation and reference merges."""
import copy
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from data import TRANSFORMS
from model import ClipVision, VisionConfig, init_weights

MEAN, STD = 0.5, 0.5


def to_input(x_u8: np.ndarray, device="cpu") -> torch.Tensor:
    """uint8 [N,H,W] -> normalised float [N,1,H,W]: (x/255 - mean) / std."""
    t = torch.from_numpy(x_u8).to(device).float().unsqueeze(1) / 255.0
    return (t - MEAN) / STD


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---- pretraining ----------------------------------------------------------

def augment_batch(x, aug, rng, chunk=16):
    """Apply one randomly chosen transformation per chunk of `chunk` images.

    aug: list of (name, prob, lo, hi); the leftover probability keeps images clean.
    """
    out = x.copy()
    probs = np.array([a[1] for a in aug] + [max(0.0, 1.0 - sum(a[1] for a in aug))])
    for s in range(0, len(x), chunk):
        j = rng.choice(len(probs), p=probs / probs.sum())
        if j == len(aug):
            continue
        name, _, lo, hi = aug[j]
        if name == "pixelate":
            st = rng.choice([k for k in (2, 4) if k <= hi])
        else:
            st = float(rng.uniform(lo, hi))
        out[s:s + chunk] = TRANSFORMS[name](x[s:s + chunk], st, rng)
    return out


def pretrain(vc: VisionConfig, sources, n_concepts, steps, batch, lr, seed, aug, device="cpu", log_every=500):
    """CLIP-like pretraining: cosine logits against a learned concept table.

    sources: list of (images u8, concept ids int64, fraction of each batch).
    Returns (model, concepts [n_concepts, E] unit rows, logit_scale float).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ClipVision(vc)
    init_weights(model, seed)
    model.to(device)
    g = torch.Generator().manual_seed(seed + 1)
    concepts = nn.Parameter((torch.randn(n_concepts, vc.projection_dim, generator=g) * 0.02).to(device))
    log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07), device=device))
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "position" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "position" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05},
                             {"params": other + [concepts, log_scale], "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.98), eps=1e-6)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    counts = [int(round(batch * f)) for _, _, f in sources]
    counts[0] += batch - sum(counts)
    model.train()
    run_loss, run_acc = 0.0, 0.0
    for step in range(steps):
        xs, ys = [], []
        for (x, y, _), n in zip(sources, counts):
            idx = rng.integers(0, len(x), size=n)
            xs.append(x[idx]); ys.append(y[idx])
        xb = np.concatenate(xs)
        yb = torch.from_numpy(np.concatenate(ys).astype(np.int64)).to(device)
        perm = rng.permutation(len(xb))
        xb, yb = augment_batch(xb[perm], aug, rng), yb[torch.from_numpy(perm).to(device)]
        emb = model(to_input(xb, device))
        logits = log_scale.exp().clamp(max=100.0) * emb @ F.normalize(concepts, dim=-1).t()
        loss = F.cross_entropy(logits, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); sched.step()
        run_loss += loss.item(); run_acc += (logits.argmax(1) == yb).float().mean().item()
        if (step + 1) % log_every == 0:
            log(f"pretrain step {step + 1}/{steps} loss {run_loss / log_every:.3f} acc {100 * run_acc / log_every:.1f} "
                f"scale {log_scale.exp().item():.1f}")
            run_loss, run_acc = 0.0, 0.0
    model.eval()
    return model, F.normalize(concepts.detach(), dim=-1).cpu(), float(log_scale.exp().clamp(max=100.0).item())


def make_head(concepts: torch.Tensor, groups) -> torch.Tensor:
    """One unit row per task class: the normalised mean of its member concepts
    (the way CLIP averages the embeddings of several prompts)."""
    rows = [F.normalize(concepts[list(g)].mean(0), dim=0) for g in groups]
    return torch.stack(rows)


# ---- fine-tuning ----------------------------------------------------------

def finetune(model: ClipVision, base_state, head, scale, x, y, steps, batch, lr, seed, device="cpu",
             wd=0.0, store_dtype=torch.float16):
    """Fine-tune a copy of `model` (started from `base_state`), encoder only: the head and
    visual_projection stay frozen. AdamW at a constant learning rate; returns the
    encoder state in the storage dtype. `model` itself is left untouched."""
    model = copy.deepcopy(model)
    model.load_state_dict(base_state, strict=False)
    model.train()
    params = [p for n, p in model.named_parameters() if n.startswith("vision_model.")]
    for n, p in model.named_parameters():
        p.requires_grad_(n.startswith("vision_model."))
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    rng = np.random.default_rng(seed)
    w = head.to(device)
    yt = torch.from_numpy(y.astype(np.int64))
    for step in range(steps):
        idx = rng.integers(0, len(x), size=batch)
        logits = scale * model(to_input(x[idx], device)) @ w.t()
        loss = F.cross_entropy(logits, yt[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {k: v.to(store_dtype).cpu() for k, v in model.encoder_state().items()}


# ---- evaluation -----------------------------------------------------------

@torch.no_grad()
def accuracy(model: ClipVision, enc_state, head, scale, x, y, device="cpu", batch=500):
    """Top-1 accuracy (%) of encoder weights `enc_state` with a fixed head."""
    model.load_state_dict({k: v.to(device).float() for k, v in enc_state.items()}, strict=False)
    model.eval()
    correct = 0
    w = head.to(device)
    for s in range(0, len(x), batch):
        logits = scale * model(to_input(x[s:s + batch], device)) @ w.t()
        correct += (logits.argmax(1).cpu() == torch.from_numpy(y[s:s + batch].astype(np.int64))).sum().item()
    return 100.0 * correct / len(x)


# ---- reference merges (FusionBench semantics) ------------------------------

def task_vectors(base, fts):
    """tau_t = theta_t - theta_0 in f32 (fine-tuned weights are widened first)."""
    return [{k: ft[k].float() - base[k] for k in base} for ft in fts]


def simple_average(fts):
    return {k: sum(ft[k].float() for ft in fts) / len(fts) for k in fts[0]}


def task_arithmetic(base, tvs, lam):
    return {k: base[k] + lam * sum(tv[k] for tv in tvs) for k in base}


def ties(base, tvs, lam=0.3, k=0.2):
    """Global top-k trim per task (">=" threshold), sign by sum, disjoint sum."""
    keys = sorted(base)
    X = torch.stack([torch.cat([tv[kk].reshape(-1) for kk in keys]) for tv in tvs])  # [T, d]
    d = X.shape[1]
    kk = d - int(d * k)
    kth = X.abs().kthvalue(kk, dim=1, keepdim=True).values
    X = X * (X.abs() >= kth)
    sign = torch.sign(X.sum(0))
    sign[sign == 0] = torch.sign(sign.sum())
    keep = ((sign > 0) & (X > 0)) | ((sign < 0) & (X < 0))
    merged = (X * keep).sum(0)
    out, off = {}, 0
    for key in keys:
        n = base[key].numel()
        out[key] = base[key] + lam * merged[off:off + n].view_as(base[key])
        off += n
    return out
