"""PyTorch reference evaluation of a written demo suite, read back from its files
(so the table describes exactly the committed weights, f16 rounding included)."""
import json
import os

import numpy as np
import torch

import core
import st_io
from model import ClipVision, VisionConfig

TA_GRID = [0.1, 0.2, 0.3, 0.5, 0.7, 1.0]
METHODS = ["sa", "ta", "ties"]
LABELS = {"base": "base", "individual": "individual", "sa": "simple avg", "ta": "TA 0.3", "ties": "TIES 0.3",
          "half": "own tau x0.5"}


def flops_per_image(c: VisionConfig) -> int:
    """Multiply-adds x2 of one forward pass (matmuls and attention products)."""
    n = (c.image_size // c.patch_size) ** 2
    t, d, m = n + 1, c.hidden_size, c.intermediate_size
    patch = 2 * n * c.num_channels * c.patch_size ** 2 * d
    layer = 2 * t * (4 * d * d + 2 * d * m) + 2 * 2 * t * t * d
    return patch + c.num_hidden_layers * layer + 2 * d * c.projection_dim


def load_suite(out, tasks=None):
    if tasks is None:
        with open(os.path.join(out, "manifest.json")) as f:
            tasks = json.load(f)["tasks"]
    with open(os.path.join(out, "base/config.json")) as f:
        cfg = json.load(f)
    vc = VisionConfig(**{k: cfg[k] for k in VisionConfig.__dataclass_fields__})
    base_all = st_io.load(os.path.join(out, "base/model.safetensors"))
    model = ClipVision(vc)
    model.load_state_dict(base_all)
    model.eval()
    base = {k: v for k, v in base_all.items() if k.startswith("vision_model.")}
    suite = []
    for e in tasks:
        ft = st_io.load(os.path.join(out, e["model"]))
        if {k: tuple(v.shape) for k, v in ft.items()} != {k: tuple(v.shape) for k, v in base.items()}:
            raise ValueError(f"{e['model']}: tensor names/shapes differ from the base encoder")
        head = st_io.load(os.path.join(out, e["head"]))
        d = st_io.load(os.path.join(out, e["data"]))
        suite.append(dict(id=e["id"], ft=ft, head=head["weight"], scale=float(head["logit_scale"][0]),
                          x=d["images"].numpy(), y=d["labels"].numpy()))
    return vc, model, base, suite


def _ratio(a, b):
    return a / b if b != 0 else float("nan")


def evaluate(out, tasks=None):
    vc, model, base, suite = load_suite(out, tasks)
    fts = [t["ft"] for t in suite]
    tvs = core.task_vectors(base, fts)
    merged = {"sa": core.simple_average(fts), "ta": core.task_arithmetic(base, tvs, 0.3), "ties": core.ties(base, tvs, 0.3)}
    grid = {lam: core.task_arithmetic(base, tvs, lam) for lam in TA_GRID}

    def acc(state, t):
        return core.accuracy(model, state, t["head"], t["scale"], t["x"], t["y"])

    res = {"tasks": {}, "ta_grid": {}, "cross": []}
    for i, t in enumerate(suite):
        r = {"base": acc(base, t), "individual": acc(t["ft"], t), "half": acc(core.task_arithmetic(base, [tvs[i]], 0.5), t)}
        for m, st in merged.items():
            r[m] = acc(st, t)
        r["tau_norm"] = float(torch.sqrt(sum((v ** 2).sum() for v in tvs[i].values())))
        res["tasks"][t["id"]] = r
        res["cross"].append([acc(fts[j], t) for j in range(len(suite))])
        core.log(f"evaluated {t['id']}: " + " ".join(f"{k} {v:.1f}" for k, v in r.items()))
    for lam, st in grid.items():
        res["ta_grid"][str(lam)] = float(np.mean([acc(st, t) for t in suite]))
    ids = [t["id"] for t in suite]
    avg = {k: float(np.mean([res["tasks"][i][k] for i in ids])) for k in ["base", "individual", "half"] + METHODS}
    gain = avg["individual"] - avg["base"]
    half_kept = [_ratio(res["tasks"][i]["half"] - res["tasks"][i]["base"], res["tasks"][i]["individual"] - res["tasks"][i]["base"])
                 for i in ids]
    keys = sorted(base)
    flat = torch.stack([torch.cat([tv[k].reshape(-1) for k in keys]) for tv in tvs])
    flat = flat / flat.norm(dim=1, keepdim=True)
    n_img = sum(len(t["y"]) for t in suite)
    res["ids"] = ids
    res["avg"] = avg
    res["summary"] = {
        "gain": gain,
        "kept": {m: _ratio(avg[m] - avg["base"], gain) for m in METHODS},
        "span": max(avg[m] for m in METHODS) - min(avg[m] for m in METHODS),
        "half_kept_per_task": half_kept,
        "half_kept_mean": float(np.mean(half_kept)),
        "half_kept_of_avg": _ratio(avg["half"] - avg["base"], gain),
        "tau_cosine": (flat @ flat.t()).tolist(),
        "eval_images": n_img,
        "eval_gflop": n_img * flops_per_image(vc) / 1e9,
        "params_encoder": int(sum(v.numel() for v in base.values())),
    }
    return res


def _met(ok):
    return "met" if ok else "NOT met"


def markdown(res) -> str:
    ids, avg, s = res["ids"], res["avg"], res["summary"]
    cols = ["base", "individual", "sa", "ta", "ties", "half"]
    lines = ["| task | " + " | ".join(LABELS[c] for c in cols) + " | own gain kept at x0.5 |",
             "|---|" + "---:|" * (len(cols) + 1)]
    for i, tid in enumerate(ids):
        r = res["tasks"][tid]
        lines.append(f"| {tid} | " + " | ".join(f"{r[c]:.1f}" for c in cols) + f" | {100 * s['half_kept_per_task'][i]:.0f}% |")
    lines.append("| **average** | " + " | ".join(f"**{avg[c]:.1f}**" for c in cols) + f" | {100 * s['half_kept_mean']:.0f}% (mean) |")
    best = max(METHODS, key=lambda m: avg[m])
    lines += ["",
              f"- fine-tuning gain: {s['gain']:.1f} points (criterion >= 15): {_met(s['gain'] >= 15)}",
              f"- TA 0.3 above base ({avg['ta']:.1f} vs {avg['base']:.1f}): {_met(avg['ta'] > avg['base'])}; "
              f"TIES 0.3 above base ({avg['ties']:.1f}): {_met(avg['ties'] > avg['base'])}",
              "- gain kept: " + ", ".join(f"{LABELS[m]} {100 * s['kept'][m]:.0f}%" for m in METHODS)
              + f"; best ({LABELS[best]}) >= 40%: {_met(s['kept'][best] >= 0.4)}",
              f"- span of the three methods: {s['span']:.1f} points (>= 5): {_met(s['span'] >= 5)}",
              f"- own task vector at x0.5 keeps {100 * s['half_kept_mean']:.0f}% of its gain on average "
              f"(per task {min(s['half_kept_per_task']) * 100:.0f}-{max(s['half_kept_per_task']) * 100:.0f}%; "
              f"> 50%: {_met(s['half_kept_mean'] > 0.5)}, > 70%: {_met(s['half_kept_mean'] > 0.7)})",
              f"- evaluation: {s['eval_images']} images, {s['eval_gflop']:.1f} GFLOP per merged model; "
              f"encoder {s['params_encoder']:,} parameters",
              "",
              "Task Arithmetic, 8-task average by lambda: "
              + ", ".join(f"{k}: {v:.1f}" for k, v in res["ta_grid"].items()),
              "",
              "Cross-task accuracy (row: evaluated task, column: model fine-tuned on):",
              "",
              "| task | " + " | ".join(ids) + " |", "|---|" + "---:|" * len(ids)]
    for tid, row in zip(ids, res["cross"]):
        lines.append(f"| {tid} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
    cos = np.array(s["tau_cosine"])
    n = len(cos)
    lines += ["", f"Mean cosine between different task vectors: {(cos.sum() - n) / (n * n - n):.3f} "
              f"(max {np.max(cos - 2 * np.eye(n)):.3f})", ""]
    return "\n".join(lines)
