"""Writes a benchmark folder: N JPEG/PNG files of a few hundred KB in class sub-folders.

Usage: python bench/gen_images.py OUT_DIR [--files N] [--classes K] [--kb KB]

Pixels are random noise (which compresses poorly, so each file stays a few hundred KB) and
every file is different. Half are JPEG (640x480, quality 90), half PNG (360x270).
--kb KB scales both sizes (same 4:3 shape) so that files average about KB kilobytes
(1 KB = 1000 bytes): 10,000 files at --kb 200 make about 2 GB.
"""

from __future__ import annotations

import argparse
import io
import math
import random
from pathlib import Path

from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kb", type=float, default=None, help="average file size to aim for")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    jpeg_size, png_size = (640, 480), (360, 270)
    if a.kb:
        # Noise compresses to a near-constant number of bytes per pixel, so one sample of each
        # kind at the default sizes gives the scale that lands the average on the target.
        sample = 0
        for size, fmt, kw in ((jpeg_size, "JPEG", {"quality": 90}), (png_size, "PNG", {"compress_level": 1})):
            buf = io.BytesIO()
            Image.frombytes("RGB", size, random.Random(0).randbytes(size[0] * size[1] * 3)).save(buf, fmt, **kw)
            sample += len(buf.getvalue()) / 2
        scale = math.sqrt(a.kb * 1000 / sample)
        jpeg_size, png_size = (
            (max(8, round(w * scale / 4) * 4), max(6, round(h * scale / 4) * 4)) for w, h in (jpeg_size, png_size)
        )
    total = 0
    for i in range(a.files):
        folder = a.out / f"class_{i % a.classes}"
        if i % 10 == 9:
            folder = folder / "extra"  # some nesting; uploads collapse it into the class
        folder.mkdir(parents=True, exist_ok=True)
        if i % 2 == 0:
            size, ext, fmt, kw = jpeg_size, "jpg", "JPEG", {"quality": 90}
        else:
            size, ext, fmt, kw = png_size, "png", "PNG", {"compress_level": 1}
        noise = rng.randbytes(size[0] * size[1] * 3)
        path = folder / f"img_{i:05d}.{ext}"
        Image.frombytes("RGB", size, noise).save(path, fmt, **kw)
        total += path.stat().st_size
    print(f"{a.files} files, {total / 1e6:.1f} MB (JPEG {jpeg_size[0]}x{jpeg_size[1]}, PNG {png_size[0]}x{png_size[1]}) in {a.out}")


if __name__ == "__main__":
    main()
