"""The eight demo tasks: what each reads out, how its images are made, and why it is in.

Concept ids 0-9 are the Fashion-MNIST classes and 10-19 the digits 0-9; a task
class is a group of concepts (its head row is their normalised mean).
"""
import numpy as np

from data import FASHION_CLASSES, apply_chain

GROUPS4 = [[0, 2, 4, 6], [1, 3], [5, 7, 9], [8]]
GROUP_NAMES = ["top", "trousers or dress", "footwear", "bag"]
TOPS = [0, 2, 4, 6]

TASKS = [
    dict(id="fashion-noise", title="Fashion, heavy noise", source="fashion", chain=[("noise", 0.45)],
         description="Fashion-MNIST (10 classes) under additive Gaussian noise, sigma = 0.45 of the grey range.",
         reason="A strong corruption the base saw only mildly (sigma <= 0.15): low base accuracy, a moderate "
                "fine-tuned ceiling, like the hard scene/texture tasks (SUN397, DTD)."),
    dict(id="fashion-dim", title="Fashion, low contrast", source="fashion", chain=[("contrast", 0.15)],
         description="Fashion-MNIST (10 classes) with contrast scaled to 15% about mid-grey.",
         reason="A photometric shift with no information lost: the base is confused, fine-tuning recovers "
                "almost all of it (a large, clean gain)."),
    dict(id="fashion-clutter", title="Fashion on stripes", source="fashion", chain=[("stripes", 200)],
         description="Fashion-MNIST (10 classes) over a random bright grating (background clutter).",
         reason="Cluttered backgrounds are rare in pretraining (amplitude <= 80 there): the lowest base score, "
                "like GTSRB/SVHN for CLIP."),
    dict(id="tops-lowres", title="Tops, low resolution", source="fashion", subset=TOPS, chain=[("pixelate", 4)],
         description="Only T-shirt/top, Pullover, Coat and Shirt, pixelated to a 7x7 grid of 4x4-pixel blocks.",
         reason="A fine-grained readout (the four most confusable classes) at low resolution, like Stanford "
                "Cars: a small label set inside a bigger one, modest gain."),
    dict(id="groups-occluded", title="Clothing groups, occluded", source="fashion", groups=GROUPS4,
         group_names=GROUP_NAMES, chain=[("occlude", 14)],
         description="Four coarse groups (top / trousers or dress / footwear / bag) with a 14x14 grey square "
                     "hiding part of each item.",
         reason="A different label set (groupings of the base's concepts, heads averaged like CLIP prompt "
                "ensembles) with a moderate corruption: high base, high ceiling."),
    dict(id="digits-dim", title="Digits, low contrast", source="digits", chain=[("contrast", 0.2)],
         description="UCI handwritten digits (8x8, upsampled to 28x28) with contrast scaled to 20%.",
         reason="The second data set: digits fine-tune to near 100%, as MNIST does for CLIP."),
    dict(id="digits-clutter", title="Digits on stripes", source="digits", chain=[("stripes", 200)],
         description="UCI digits over a random bright grating.",
         reason="The same corruption kind as fashion-clutter on another data set: related tasks whose task "
                "vectors share some direction, as related CLIP tasks do."),
    dict(id="digits-impulse", title="Digits, salt and pepper", source="digits", chain=[("saltpepper", 0.3)],
         description="UCI digits with 30% of the pixels set to black or white.",
         reason="Impulse noise on small, blurry digits destroys information: a hard task with a low ceiling."),
]


def task_classes(spec):
    if spec.get("groups"):
        return list(spec["group_names"])
    if spec.get("subset"):
        return [FASHION_CLASSES[c] for c in spec["subset"]]
    return list(FASHION_CLASSES) if spec["source"] == "fashion" else [str(d) for d in range(10)]


def concept_groups(spec):
    """For each task class, the pretraining concepts it stands for."""
    off = 0 if spec["source"] == "fashion" else 10
    if spec.get("groups"):
        groups = spec["groups"]
    elif spec.get("subset"):
        groups = [[c] for c in spec["subset"]]
    else:
        groups = [[c] for c in range(10)]
    return [[c + off for c in g] for g in groups]


def build_task(spec, slot, fashion, digits, n_eval):
    """Transformed train set and a test slice for one task.

    Fashion tasks take disjoint slices of the 10k test split (by slot); digits
    tasks share the 500 held-out digits. Transformations use a per-task seed.
    """
    (trx, try_), (tex, tey) = fashion if spec["source"] == "fashion" else digits
    groups = concept_groups(spec)
    off = 0 if spec["source"] == "fashion" else 10
    lab = np.full(10, 255, np.uint8)
    for i, g in enumerate(groups):
        for c in g:
            lab[c - off] = i
    rng = np.random.default_rng(1000 + slot)

    def prep(x, y, n=None, start=0):
        keep = lab[y] != 255
        x, y = x[keep], lab[y[keep]]
        if n is not None:
            start = start % max(1, len(x) - n + 1)
            x, y = x[start:start + n], y[start:start + n]
        return apply_chain(x, spec.get("chain", []), rng), y

    train_x, train_y = prep(trx, try_)
    start = slot * n_eval if spec["source"] == "fashion" else 0
    test_x, test_y = prep(tex, tey, n_eval, start)
    return dict(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y, groups=groups)
