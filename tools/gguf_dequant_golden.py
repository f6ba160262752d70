#!/usr/bin/env python3
"""Writes frontends/tests/data/gguf_dequant_golden.bin: random blocks of each ggml type Kiln
dequantizes, with what the `gguf` Python package (llama.cpp's gguf-py) dequantizes them to.

Usage: python3 tools/gguf_dequant_golden.py  (needs `pip install gguf numpy`)

Layout, little-endian, repeated per type: u32 ggml type id, u32 byte count, the blocks' bytes,
u32 element count, the f32 values. The f16 (or bf16) scale fields are set to finite random
values so that no block holds NaN or infinity.
"""
import struct
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T, dequantize
from gguf.constants import GGML_QUANT_SIZES

# For each type: byte offsets of f16 fields inside one block.
HALF_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
BLOCKS = 3


def main():
    rng = np.random.default_rng(20261207)
    out = bytearray()
    for ty, fields in HALF_FIELDS.items():
        block, size = GGML_QUANT_SIZES[ty]
        raw = rng.integers(0, 256, size=(BLOCKS, size), dtype=np.uint8)
        for b in range(BLOCKS):
            for f in fields:
                v = np.float16(rng.normal(0, 0.05))
                raw[b, f:f + 2] = np.frombuffer(v.tobytes(), dtype=np.uint8)
        vals = dequantize(raw.reshape(-1), ty).astype(np.float32).reshape(-1)
        assert vals.size == BLOCKS * block and np.isfinite(vals).all()
        out += struct.pack("<II", int(ty), raw.size) + raw.tobytes()
        out += struct.pack("<I", vals.size) + vals.astype("<f4").tobytes()
    for ty, dt in [(T.F16, np.float16), (T.BF16, None)]:
        x = rng.normal(0, 1, size=64).astype(np.float32)
        if dt is None:
            raw = (x.view(np.uint32) >> 16).astype("<u2").view(np.uint8)
        else:
            raw = x.astype(dt).view(np.uint8)
        vals = dequantize(raw, ty).astype(np.float32).reshape(-1)
        out += struct.pack("<II", int(ty), raw.size) + raw.tobytes()
        out += struct.pack("<I", vals.size) + vals.astype("<f4").tobytes()
    path = Path(__file__).resolve().parent.parent / "frontends/tests/data/gguf_dequant_golden.bin"
    path.write_bytes(bytes(out))
    print(f"wrote {path} ({len(out)} bytes)")


if __name__ == "__main__":
    main()
