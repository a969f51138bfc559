"""Build the embedded demo suite: pretrain a small CLIP-layout vision tower, make
CLIP-like fixed heads, fine-tune one encoder per task, write the files, and
measure the PyTorch reference table from the written files.

    /usr/bin/python3 tools/demo/train.py --out public/demo

Defaults reproduce the committed files (see tools/demo/README.md).
"""
import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of the repository

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy/torch load BLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import core  # noqa: E402
import data  # noqa: E402
import st_io  # noqa: E402
from evaluate import evaluate, markdown  # noqa: E402
from model import VisionConfig  # noqa: E402
from tasks import TASKS, build_task, task_classes  # noqa: E402

# Mild versions of every corruption the tasks use, so the base has the features
# (name, probability per 16-image chunk, low, high strength).
PRETRAIN_AUG = [
    ("noise", 0.10, 0.0, 0.15), ("blur", 0.08, 0.3, 1.0), ("pixelate", 0.05, 2, 2),
    ("contrast", 0.08, 0.5, 1.0), ("invert", 0.03, 1, 1), ("occlude", 0.08, 4, 10),
    ("saltpepper", 0.05, 0.0, 0.08), ("solarize", 0.03, 180, 250), ("edges", 0.03, 0.5, 1.0),
    ("stripes", 0.05, 0, 80),
]
N_CONCEPTS = 20  # 10 Fashion-MNIST classes + 10 digits


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="public/demo", help="output folder (default public/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pre-steps", type=int, default=2000)
    p.add_argument("--pre-batch", type=int, default=128)
    p.add_argument("--pre-lr", type=float, default=1e-3)
    p.add_argument("--pre-digits-frac", type=float, default=0.1, help="share of digits in each pretraining batch")
    p.add_argument("--ft-steps", type=int, default=500)
    p.add_argument("--ft-batch", type=int, default=64)
    p.add_argument("--ft-lr", type=float, default=1e-4)
    p.add_argument("--n-eval", type=int, default=450, help="test images per task")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--fashion-dir", default=None, help="folder with the Fashion-MNIST *.gz IDX files")
    p.add_argument("--digits", default=None, help="path of sklearn's digits.csv.gz")
    p.add_argument("--report", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference_results.json"),
                   help="where the measured table goes (JSON; a Markdown twin is written beside it)")
    p.add_argument("--eval-only", action="store_true", help="only measure the files already in --out")
    return p.parse_args(argv)


def write_suite(args, vc, model, base, concepts, scale, built, fts):
    """Write every file except the manifest; return the manifest's task entries."""
    out = args.out
    meta = {"format": "pt", "producer": "tools/demo/train.py"}
    base_state = {k: v.detach().cpu().float() for k, v in model.state_dict().items()}  # encoder + visual_projection
    if any(not torch.equal(base_state[k], v) for k, v in base.items()):
        raise RuntimeError("the pretrained model changed after pretraining")
    st_io.save(os.path.join(out, "base/model.safetensors"), base_state, meta)
    st_io.atomic_write(os.path.join(out, "base/config.json"), (json.dumps(vc.to_hf(), indent=2) + "\n").encode())
    entries = []
    for spec, t, ft in zip(TASKS, built, fts):
        tid = spec["id"]
        st_io.save(os.path.join(out, f"models/{tid}.safetensors"), ft, meta)
        head = core.make_head(concepts, t["groups"]).float()
        st_io.save(os.path.join(out, f"heads/{tid}.safetensors"),
                   {"weight": head, "logit_scale": torch.tensor([scale], dtype=torch.float32)}, meta)
        st_io.save(os.path.join(out, f"data/{tid}.safetensors"),
                   {"images": torch.from_numpy(t["test_x"]), "labels": torch.from_numpy(t["test_y"].astype(np.uint8))}, meta)
        entries.append({"id": tid, "title": spec["title"], "description": spec["description"],
                        "classes": task_classes(spec), "model": f"models/{tid}.safetensors",
                        "head": f"heads/{tid}.safetensors", "data": f"data/{tid}.safetensors"})
    return entries


def write_manifest(out, entries, result):
    files = {}
    for root, _, names in os.walk(out):
        for n in sorted(names):
            full = os.path.join(root, n)
            rel = os.path.relpath(full, out).replace(os.sep, "/")
            if rel == "manifest.json" or n.endswith(".tmp"):
                continue
            files[rel] = {"bytes": os.path.getsize(full), "sha256": st_io.sha256(full)}
    for e in entries:
        r = result["tasks"][e["id"]]
        e["individual_accuracy"] = round(r["individual"], 2)
        e["base_accuracy"] = round(r["base"], 2)
    manifest = {"format": 1, "name": "Mini-CLIP demo suite: Fashion-MNIST and UCI digits, 8 tasks",
                "image": {"height": data.SIZE, "width": data.SIZE, "channels": 1, "mean": core.MEAN, "std": core.STD},
                "base": {"path": "base/model.safetensors", "config": "base/config.json"},
                "tasks": entries, "files": dict(sorted(files.items()))}
    st_io.atomic_write(os.path.join(out, "manifest.json"), (json.dumps(manifest, indent=2) + "\n").encode())


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    t0 = time.time()
    if args.eval_only:
        result = evaluate(args.out)
        print(markdown(result))
        return
    fashion = data.load_fashion(args.fashion_dir)
    digits = data.load_digits(args.digits)
    (fx, fy), _ = fashion
    (dx, dy), _ = digits
    vc = VisionConfig()
    core.log(f"pretraining {args.pre_steps} steps on {len(fx)} fashion + {len(dx)} digit images")
    sources = [(fx, fy.astype(np.int64), 1 - args.pre_digits_frac), (dx, dy.astype(np.int64) + 10, args.pre_digits_frac)]
    model, concepts, scale = core.pretrain(vc, sources, N_CONCEPTS, args.pre_steps, args.pre_batch, args.pre_lr,
                                           args.seed, PRETRAIN_AUG)
    t_pre = time.time() - t0
    base = model.encoder_state()
    built, fts = [], []
    for slot, spec in enumerate(TASKS):
        t = build_task(spec, slot, fashion, digits, args.n_eval)
        head = core.make_head(concepts, t["groups"])
        ft = core.finetune(model, base, head, scale, t["train_x"], t["train_y"], args.ft_steps, args.ft_batch,
                           args.ft_lr, args.seed * 1000 + 100 + slot)
        core.log(f"fine-tuned {spec['id']} ({len(t['train_x'])} train images)")
        built.append(t)
        fts.append(ft)
    t_ft = time.time() - t0 - t_pre
    entries = write_suite(args, vc, model, base, concepts, scale, built, fts)
    result = evaluate(args.out, tasks=entries)
    write_manifest(args.out, entries, result)
    result["timing_s"] = {"pretrain": round(t_pre), "finetune": round(t_ft), "total": round(time.time() - t0)}
    result["settings"] = {k: v for k, v in vars(args).items() if k not in ("out", "report", "eval_only")}
    st_io.atomic_write(args.report, (json.dumps(result, indent=1) + "\n").encode())
    md = markdown(result)
    st_io.atomic_write(os.path.splitext(args.report)[0] + ".md", md.encode())
    print(md)
    core.log(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
