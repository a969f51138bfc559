"""Minimal safetensors writer/reader (the format: u64 LE header length, JSON
header, raw little-endian tensor bytes), plus atomic file writes."""
import hashlib
import json
import os
import struct

import numpy as np
import torch

_DT = {torch.float32: ("F32", np.float32), torch.float16: ("F16", np.float16), torch.uint8: ("U8", np.uint8)}
_NP = {"F32": np.float32, "F16": np.float16, "U8": np.uint8}


def atomic_write(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def encode(tensors: dict, metadata: dict = None) -> bytes:
    """Serialise name -> torch tensor; tensors are laid out in sorted name order."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        code, npdt = _DT[t.dtype]
        b = t.numpy().astype(npdt, copy=False).astype(np.dtype(npdt).newbyteorder("<")).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)  # keep the data 8-byte aligned
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def save(path: str, tensors: dict, metadata: dict = None) -> None:
    atomic_write(path, encode(tensors, metadata))


def load(path: str) -> dict:
    """name -> torch tensor in the stored dtype."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw, dtype=np.dtype(_NP[info["dtype"]]).newbyteorder("<"), count=(b - a) // np.dtype(_NP[info["dtype"]]).itemsize,
                            offset=8 + n + a).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.astype(_NP[info["dtype"]]).copy())
    return out


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
