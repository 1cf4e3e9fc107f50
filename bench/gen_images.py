"""Writes a benchmark folder: N JPEG/PNG files of a few hundred KB in class sub-folders.

Usage: python bench/gen_images.py OUT_DIR [--files N] [--classes K]

Pixels are random noise (which compresses poorly, so each file stays a few hundred KB) and
every file is different. Half are JPEG (640x480, quality 90), half PNG (360x270).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    total = 0
    for i in range(a.files):
        folder = a.out / f"class_{i % a.classes}"
        if i % 10 == 9:
            folder = folder / "extra"  # some nesting; uploads collapse it into the class
        folder.mkdir(parents=True, exist_ok=True)
        if i % 2 == 0:
            size, ext, fmt, kw = (640, 480), "jpg", "JPEG", {"quality": 90}
        else:
            size, ext, fmt, kw = (360, 270), "png", "PNG", {"compress_level": 1}
        noise = rng.randbytes(size[0] * size[1] * 3)
        path = folder / f"img_{i:05d}.{ext}"
        Image.frombytes("RGB", size, noise).save(path, fmt, **kw)
        total += path.stat().st_size
    print(f"{a.files} files, {total / 1e6:.1f} MB in {a.out}")


if __name__ == "__main__":
    main()
