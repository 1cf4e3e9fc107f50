"""Export and import benchmark: time and peak memory of `pictograph export`, built by the
client (the CLI's own peak RSS) and by the server (the server's peak RSS during the job), and
of `pictograph import` (the CLI's peak RSS), for datasets of growing size. Memory should stay
flat as the dataset grows; time should grow linearly.

Usage: python bench/exports.py [--sizes 600,3000] [--runs 3] [--formats coco,yolo] [--bin PATH]
       python bench/exports.py --imports-only --sizes 1000,4000,12000 [--formats coco,yolo]

Needs Pillow (tests/formats/.venv has it). Starts `pictograph serve` on 127.0.0.1 with a
fresh data directory, builds each dataset by importing a generated folder (small PNGs, five
boxes each) with `pictograph import` in each format asked for, measuring each import (a first
run that uploads everything, then a re-run that finds everything there), then times whole
export commands on warm caches (skipped with --imports-only). Export figures are medians over
the runs. Not a test: nothing is asserted beyond every run succeeding. Each measured export
runs against a freshly started server, whose peak RSS is read from /proc/PID/status (VmHWM)
afterwards, so Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent


def make_coco(root: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    images, anns = [], []
    for i in range(n):
        rel = f"part{i % 4}/img_{i:06d}.png"
        path = root / "images" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.frombytes("RGB", (64, 48), rng.randbytes(64 * 48 * 3)).save(path, "PNG", compress_level=1)
        images.append({"id": i + 1, "file_name": rel, "width": 64, "height": 48})
        for k in range(5):
            x, y = rng.randint(0, 40), rng.randint(0, 30)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": k % 3 + 1,
                         "bbox": [x, y, rng.randint(2, 23), rng.randint(2, 17)], "iscrowd": 0})
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances.json").write_text(json.dumps({
        "images": images, "annotations": anns,
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}],
    }))


def make_yolo(root: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(n):
        split = "train" if i % 5 else "val"
        rel = f"{split}/part{i % 4}/img_{i:06d}"
        path = root / "images" / f"{rel}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.frombytes("RGB", (64, 48), rng.randbytes(64 * 48 * 3)).save(path, "PNG", compress_level=1)
        label = root / "labels" / f"{rel}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for k in range(5):
            w, h = rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3)
            lines.append(f"{k % 3} {rng.uniform(w / 2, 1 - w / 2):.6f} {rng.uniform(h / 2, 1 - h / 2):.6f} "
                         f"{w:.6f} {h:.6f}")
        label.write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text("train: images/train\nval: images/val\nnames:\n  0: a\n  1: b\n  2: c\n")


MAKERS = {"coco": make_coco, "yolo": make_yolo}


def run_measured(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Runs `cmd`; answers (seconds, peak RSS in KiB of that process).

    The peak is the process's own VmHWM, sampled until it exits. The ru_maxrss that wait4
    reports is no good here: Linux carries the high-water mark of the forked copy of this
    (Python) process across the exec, so small commands would all show Python's size.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                peak[0] = max(peak[0], vm_hwm(proc.pid))
            except (OSError, ValueError):
                pass
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.decode()}\n{err.decode()}")
    return elapsed, peak[0]


def vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="600,3000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--formats", default="coco,yolo")
    ap.add_argument("--bin", type=Path, default=REPO / "target" / "release" / "pictograph")
    ap.add_argument("--imports-only", action="store_true", help="measure imports, no exports")
    a = ap.parse_args()
    if not a.bin.is_file():
        sys.exit(f"{a.bin} not found: `cargo build --release -p pictograph-cli` (or pass --bin)")
    sizes = [int(s) for s in a.sizes.split(",")]
    formats = a.formats.split(",")

    work = Path(tempfile.mkdtemp(prefix="pictograph-bench-exports."))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PICTOGRAPH_")}
    env["PICTOGRAPH_CONFIG_DIR"] = str(work / "config")

    def start() -> subprocess.Popen[bytes]:
        """`pictograph serve` on the bench's data directory; sets the client's base URL."""
        server = subprocess.Popen(
            [str(a.bin), "serve", "--data-dir", str(work / "data"), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=open(work / "server.log", "ab"), env=env,
        )
        url: list[str] = []
        ready = threading.Event()

        def pump() -> None:
            for raw in server.stdout:
                line = raw.decode().strip()
                if line.startswith("listening on "):
                    url.append(line.split()[-1])
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(60) or not url:
            server.kill()
            sys.exit("server did not start: " + (work / "server.log").read_text())
        env["PICTOGRAPH_BASE_URL"] = url[0]
        return server

    def stop(server: subprocess.Popen[bytes]) -> None:
        server.terminate()
        server.wait(timeout=30)

    server = start()
    try:
        env["PICTOGRAPH_API_KEY"] = subprocess.run(
            [str(a.bin), "keys", "create", "--data-dir", str(work / "data"), "--org", "bench",
             "--role", "owner", "--tier", "unlimited"],
            capture_output=True, text=True, env=env, check=True,
        ).stdout.strip().splitlines()[-1]
        imports = []
        for n in sizes:
            for fmt in [f for f in formats if f in MAKERS] or ["coco"]:
                src = work / f"src-{fmt}-{n}"
                MAKERS[fmt](src, n, n)
                # The COCO import of each size is the dataset the exports read.
                name = f"d{n}" if fmt == "coco" else f"d{n}-{fmt}"
                cmd = [str(a.bin), "import", str(src), "--format", fmt, "--dataset", name, "--create",
                       "--json"]
                first_s, first_m = run_measured(cmd, env)
                again_s, again_m = run_measured(cmd, env)
                imports.append((fmt, n, first_s, first_m / 1024, again_s, again_m / 1024))
                print(f"dataset {name}: {n} images, {5 * n} boxes imported ({fmt}) in {first_s:.1f} s",
                      file=sys.stderr)
                if fmt != "coco":
                    shutil.rmtree(src)
    finally:
        stop(server)

    print(f"{'import':<8}{'images':>8}{'first s':>10}{'first MiB':>11}{'re-run s':>10}{'re-run MiB':>12}")
    for fmt, n, fs, fm, rs, rm in imports:
        print(f"{fmt:<8}{n:>8}{fs:>10.2f}{fm:>11.1f}{rs:>10.2f}{rm:>12.1f}")
    for fmt in sorted({r[0] for r in imports}):
        mine = [r for r in imports if r[0] == fmt]
        small, big = mine[0], mine[-1]
        print(f"import {fmt}: {big[1] / small[1]:.0f}x the images -> client peak RSS x{big[3] / small[3]:.2f} "
              f"(re-run x{big[5] / small[5]:.2f}), time x{big[2] / small[2]:.1f}")
    if a.imports_only:
        shutil.rmtree(work, ignore_errors=True)
        return

    # Every measured export runs against a freshly started server, so the server's peak RSS
    # (VmHWM) is that of one export, not the high-water mark of everything before it.
    try:
        rows = []
        for fmt in formats:
            for n in sizes:
                client_t, client_m, server_t, server_m = [], [], [], []
                for r in range(a.runs):
                    server = start()
                    try:
                        out = work / f"out-{fmt}-{n}-{r}"
                        secs, peak = run_measured(
                            [str(a.bin), "export", f"d{n}", str(out), "--format", fmt, "--json"], env)
                        client_t.append(secs)
                        client_m.append(peak)
                        shutil.rmtree(out)
                    finally:
                        stop(server)
                    server = start()
                    try:
                        idle = vm_hwm(server.pid)
                        archive = work / f"{fmt}-{n}-{r}.tar"
                        secs, _ = run_measured(
                            [str(a.bin), "export", f"d{n}", str(archive), "--format", fmt, "--server",
                             "--json"], env)
                        server_t.append(secs)
                        server_m.append(vm_hwm(server.pid))
                        archive.unlink()
                    finally:
                        stop(server)
                rows.append((fmt, n, statistics.median(client_t), statistics.median(client_m) / 1024,
                             statistics.median(server_t), statistics.median(server_m) / 1024))
        print(f"server peak RSS when idle after start: {idle / 1024:.1f} MiB")
        print(f"{'format':<8}{'images':>8}{'client s':>10}{'client MiB':>12}{'server s':>10}{'server MiB':>12}")
        for fmt, n, ct, cm, st, sm in rows:
            print(f"{fmt:<8}{n:>8}{ct:>10.2f}{cm:>12.1f}{st:>10.2f}{sm:>12.1f}")
        for fmt in formats:
            mine = [r for r in rows if r[0] == fmt]
            small, big = mine[0], mine[-1]
            print(f"{fmt}: {big[1] / small[1]:.0f}x the images -> client peak RSS x{big[3] / small[3]:.2f}, "
                  f"server peak RSS x{big[5] / small[5]:.2f}, client time x{big[2] / small[2]:.1f}, "
                  f"server time x{big[4] / small[4]:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
