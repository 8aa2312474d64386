"""Safetensors written and read by hand: numpy cannot hold float8 in safetensors' numpy API.

Part of the tiny checkpoint generator (scenarios/tiny_model.py); its bytes are part of every recording's
model digest.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from scenarios.tiny_quant import BF16, FP8

_ST_DTYPES = {"F8_E4M3": FP8, "BF16": BF16, "F32": np.float32, "I8": np.int8}
_ST_NAMES = {np.dtype(v): k for k, v in _ST_DTYPES.items()}


def write_safetensors(path: Path, specs: list[tuple[str, str, tuple[int, ...]]],
                      arrays: Iterator[np.ndarray], metadata: dict[str, str] | None = None) -> int:
    """Stream tensors into a safetensors file; specs (name, dtype, shape) fix the header first.

    `arrays` yields one array per spec, in order. Returns the file size in bytes."""
    header: dict[str, object] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, dtype, shape in specs:
        nbytes = math.prod(shape) * np.dtype(_ST_DTYPES[dtype]).itemsize
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for (name, dtype, shape), arr in zip(specs, arrays, strict=True):
            assert arr.shape == tuple(shape) and _ST_NAMES[arr.dtype] == dtype, (name, arr.shape, arr.dtype)
            f.write(np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data)
    return 8 + len(blob) + offset


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Memory-map a safetensors file as {name: array} (float8/bf16 as ml_dtypes arrays)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = raw[a:b].view(_ST_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out
