"""Expected outputs of Pillow's resize for pipelines/src/image/resize.rs.

  python tools/pil_resize_golden.py
      writes pipelines/tests/data/pil_resize_golden.txt: the unit test's golden cases, one line
      `W H NEW_W NEW_H PIL_CODE HEX` each, on the picture(W, H) formula the Rust test uses
  python tools/pil_resize_golden.py --random N OUT [SEED]
      writes N random cases (random images, sizes 1..96 and a few large ones, all 8 filters) as a
      binary file for a differential check: per case u32 LE w, h, nw, nh, code, then w*h*3 source
      bytes, then nw*nh*3 expected bytes"""
import os
import struct
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "pipelines", "tests", "data", "pil_resize_golden.txt")


def picture(w, h):
    """Same as `picture` in resize.rs's tests."""
    v = bytearray()
    for y in range(h):
        for x in range(w):
            for c in range(3):
                t = (x * 37 + y * 91 + c * 53 + (x * y) % 7 * 29) % 256
                v.append(255 - (t & 1) * 255 if (x + y + c) % 5 == 0 else t)
    return bytes(v)


def resize(src, w, h, nw, nh, code):
    return Image.frombytes("RGB", (w, h), src).resize((nw, nh), code).tobytes()


# (w, h, new_w, new_h, code): codes 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming,
# 6 MKS2013, 7 MKS2021. Pillow 13 runs the vertical pass first when h - nh > 2 * (w - nw) and
# h > nh: (9, 30, 8, 6) and (40, 41, 12, 11) take that path, (12, 41, 3, 11) is just outside it.
CASES = [
    (7, 5, 3, 4, 2), (5, 3, 11, 6, 2), (97, 61, 8, 8, 2), (17, 33, 8, 8, 2),
    (7, 5, 3, 4, 3), (5, 3, 11, 6, 3), (40, 9, 6, 13, 3),
    (13, 9, 4, 7, 1), (4, 6, 9, 5, 1),
    (6, 5, 9, 4, 0), (23, 7, 5, 11, 0),
    (9, 7, 4, 3, 4), (9, 7, 4, 3, 5),
    (1, 1, 3, 2, 2), (9, 1, 4, 1, 3), (1, 9, 2, 4, 1), (50, 1, 6, 6, 2), (8, 3, 1, 1, 3),
    (12, 4, 12, 7, 2), (6, 10, 3, 10, 3),
    (9, 30, 8, 6, 2), (9, 30, 8, 6, 3), (40, 41, 12, 11, 1), (12, 41, 3, 11, 2), (5, 24, 9, 5, 3),
    (11, 8, 5, 13, 6), (11, 8, 5, 13, 7), (30, 9, 7, 4, 7),
]


def write_golden():
    os.makedirs(os.path.dirname(GOLDEN), exist_ok=True)
    with open(GOLDEN, "w") as f:
        f.write(f"# Pillow {Image.__version__}: W H NEW_W NEW_H PIL_CODE HEX (tools/pil_resize_golden.py)\n")
        for w, h, nw, nh, code in CASES:
            f.write(f"{w} {h} {nw} {nh} {code} {resize(picture(w, h), w, h, nw, nh, code).hex()}\n")
    print(f"{GOLDEN}: {len(CASES)} cases")


def write_random(n, out, seed):
    rng = np.random.default_rng(seed)
    with open(out, "wb") as f:
        for i in range(n):
            if i % 50 == 0:   # a few large ones: real photo sizes down to model sizes
                w, h = int(rng.integers(200, 700)), int(rng.integers(150, 500))
                nw, nh = int(rng.choice([32, 224, 384])), int(rng.choice([32, 224, 384]))
            else:
                w, h, nw, nh = (int(rng.integers(1, 97)) for _ in range(4))
                if rng.random() < 0.15:
                    w, h, nw, nh = (1 if rng.random() < 0.5 else v for v in (w, h, nw, nh))
            code = int(rng.integers(0, 8))
            kind = rng.random()
            if kind < 0.4:   # noise
                src = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            elif kind < 0.7:   # extremes: overshoot of bicubic/lanczos must clip
                src = (rng.integers(0, 2, (h, w, 3)) * 255).astype(np.uint8)
            else:   # smooth gradient with noise
                yy, xx = np.mgrid[0:h, 0:w]
                g = (xx * 255 // max(w - 1, 1) + yy * 97 // max(h - 1, 1))[..., None] + np.arange(3) * 40
                src = ((g + rng.integers(-9, 10, (h, w, 3))) % 256).astype(np.uint8)
            src = src.tobytes()
            f.write(struct.pack("<5I", w, h, nw, nh, code) + src + resize(src, w, h, nw, nh, code))
    print(f"{out}: {n} random cases")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--random":
        write_random(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    else:
        write_golden()
