"""What checksumming every index file costs at scale: `python bench/checksum.py [--rows 1000000]`.

Writes a vectors.npy-sized file of `rows` x 384 float32 (1M rows: 1.5 GB) under a temp dir and
times the whole-file xxh3 digest (what `rag index` and `rag verify` do to each reused file) and the
sampled digest (what every open does to files over rag.manifest.FULL_CHECK_BYTES).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from rag.manifest import FULL_CHECK_BYTES, digest, sample_digest


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=1_000_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "vectors.npy"
        rng = np.random.default_rng(0)
        with open(path, "wb") as f:
            for start in range(0, args.rows, 100_000):
                f.write(rng.standard_normal((min(100_000, args.rows - start), 384), dtype="float32").tobytes())
        size = path.stat().st_size
        for what, fn in (("whole-file xxh3", lambda: digest(path)), ("sampled xxh3", lambda: sample_digest(path, size))):
            times = []
            for _ in range(3):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
            print(f"{what}: {size / 2**30:.2f} GiB in {min(times):.3f} s (best of 3, page cache warm)")
        print(f"files over {FULL_CHECK_BYTES >> 20} MiB are sampled on open; `rag index` and `rag verify` hash them whole")


if __name__ == "__main__":
    main()
