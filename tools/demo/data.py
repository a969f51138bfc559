"""Raw data (Fashion-MNIST, UCI digits) and the image transformations tasks use.

Images are uint8 arrays [N, 28, 28], bright object on a dark background.
Every random choice takes an explicit numpy Generator so runs are repeatable.
"""
import gzip
import os

import numpy as np
import torch
import torch.nn.functional as F

FASHION_DIRS = ["/usr/share/datasets/fashion-mnist"]
DIGITS_PATHS = [
    "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz",
    "/tmp/sk/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz",
]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DIGIT_CLASSES = [str(i) for i in range(10)]
SIZE = 28


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


def find_file(candidates, what: str) -> str:
    for p in candidates:
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{what} not found; looked in: {', '.join(candidates)}")


def load_fashion(directory: str = None):
    """Fashion-MNIST as ((train_x, train_y), (test_x, test_y))."""
    d = directory or os.path.dirname(find_file(
        [os.path.join(x, "train-images-idx3-ubyte.gz") for x in FASHION_DIRS], "Fashion-MNIST"))
    out = []
    for split in ("train", "t10k"):
        x = _read_idx(os.path.join(d, f"{split}-images-idx3-ubyte.gz"))
        y = _read_idx(os.path.join(d, f"{split}-labels-idx1-ubyte.gz"))
        out.append((x, y))
    return out[0], out[1]


def upsample_digits(x8: np.ndarray) -> np.ndarray:
    """8x8 grey levels 0..16 -> 28x28 uint8 by bilinear resize (align_corners=False)."""
    t = torch.from_numpy(x8.astype(np.float32) * (255.0 / 16.0)).unsqueeze(1)
    up = F.interpolate(t, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return up.squeeze(1).round().clamp(0, 255).numpy().astype(np.uint8)


def load_digits(path: str = None, n_test: int = 500, seed: int = 1797):
    """UCI digits upsampled to 28x28, split by a seeded permutation into train/test."""
    p = path or find_file(DIGITS_PATHS, "digits.csv.gz (python3-sklearn)")
    with gzip.open(p, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x = upsample_digits(rows[:, :64].reshape(-1, 8, 8))
    y = rows[:, 64].astype(np.uint8)
    perm = np.random.default_rng(seed).permutation(len(y))
    te, tr = perm[:n_test], perm[n_test:]
    return (x[tr], y[tr]), (x[te], y[te])


# ---- transformations (uint8 in, uint8 out) --------------------------------

def _f(x):
    return x.astype(np.float32)


def _u8(x):
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _per_image(s, n):
    return np.broadcast_to(np.asarray(s, dtype=np.float32), (n,)).reshape(n, 1, 1)


def t_noise(x, s, rng):
    """Additive Gaussian noise, sigma = s (fraction of the 0..255 range)."""
    return _u8(_f(x) + rng.standard_normal(x.shape).astype(np.float32) * 255.0 * _per_image(s, len(x)))


def _gauss_kernel(sigma):
    r = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return k / k.sum()


def t_blur(x, s, rng=None):
    """Gaussian blur with a single sigma s (pixels) for the whole batch."""
    if s <= 0.05:
        return x.copy()
    k = torch.tensor(_gauss_kernel(s), dtype=torch.float32)
    r = (len(k) - 1) // 2
    t = torch.from_numpy(_f(x)).unsqueeze(1)
    t = F.conv2d(F.pad(t, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    t = F.conv2d(F.pad(t, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    return _u8(t.squeeze(1).numpy())


def t_pixelate(x, k, rng=None):
    """Average k x k blocks (k divides 28) and repeat them: a low-resolution look."""
    k = int(k)
    if k <= 1:
        return x.copy()
    n = len(x)
    m = _f(x).reshape(n, SIZE // k, k, SIZE // k, k).mean(axis=(2, 4))
    return _u8(np.repeat(np.repeat(m, k, axis=1), k, axis=2))


def t_contrast(x, c, rng=None):
    """Scale contrast about mid-grey: 128 + c (x - 128)."""
    return _u8(128.0 + _per_image(c, len(x)) * (_f(x) - 128.0))


def t_invert(x, s=1.0, rng=None):
    """Photographic negative."""
    return (255 - x).astype(np.uint8)


def t_occlude(x, size, rng):
    """A grey square of side `size` pixels at a random position in each image."""
    size = int(size)
    out = x.copy()
    if size <= 0:
        return out
    pos = rng.integers(0, SIZE - size + 1, size=(len(x), 2))
    for i, (r, c) in enumerate(pos):
        out[i, r:r + size, c:c + size] = 128
    return out


def t_saltpepper(x, p, rng):
    """Impulse noise: a fraction p of pixels set to 0 or 255."""
    out = x.copy()
    u = rng.random(x.shape)
    pp = _per_image(p, len(x))
    out[u < pp / 2] = 0
    out[(u >= pp / 2) & (u < pp)] = 255
    return out


def t_solarize(x, thr, rng=None):
    """Invert every pixel brighter than thr (0..255)."""
    out = x.copy()
    m = x > thr
    out[m] = 255 - x[m]
    return out


def t_edges(x, s=1.0, rng=None):
    """Sobel gradient magnitude (a line-drawing look), scaled by s."""
    t = torch.from_numpy(_f(x)).unsqueeze(1)
    kx = torch.tensor([[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]]).view(1, 1, 3, 3)
    p = F.pad(t, (1, 1, 1, 1), mode="replicate")
    gx, gy = F.conv2d(p, kx), F.conv2d(p, kx.transpose(2, 3))
    return _u8((gx ** 2 + gy ** 2).sqrt().squeeze(1).numpy() * 0.25 * float(s))


def t_stripes(x, a, rng):
    """Clutter: a random-phase, random-angle grating of amplitude a (0..255) behind the object."""
    n = len(x)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    ang = rng.uniform(0, np.pi, size=(n, 1, 1)).astype(np.float32)
    ph = rng.uniform(0, 2 * np.pi, size=(n, 1, 1)).astype(np.float32)
    g = 0.5 + 0.5 * np.sin(0.9 * (xx * np.cos(ang) + yy * np.sin(ang)) + ph)
    return _u8(np.maximum(_f(x), _per_image(a, n) * g))


TRANSFORMS = {
    "none": lambda x, s, rng: x.copy(),
    "noise": t_noise, "blur": t_blur, "pixelate": t_pixelate, "contrast": t_contrast,
    "invert": t_invert, "occlude": t_occlude, "saltpepper": t_saltpepper,
    "solarize": t_solarize, "edges": t_edges, "stripes": t_stripes,
}


def apply_chain(x, chain, rng):
    """Apply a list of (name, strength) transformations in order."""
    for name, s in chain:
        x = TRANSFORMS[name](x, s, rng)
    return x
