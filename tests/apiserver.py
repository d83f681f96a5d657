"""`rag serve` as a user starts it, in a subprocess on a free loopback port (the API and app tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Served:
    url: str  # "http://127.0.0.1:PORT/"
    corpus_dir: Path
    index_dir: Path
    proc: subprocess.Popen
    banner: str  # the "Serving ..." line
    output: list[str] = field(default_factory=list)  # everything it printed, kept to show when a test fails

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def serve_copy(source_rag, where: Path, port: int, env: dict | None = None, args=(), with_index: bool = True) -> Served:
    """Copy source_rag's corpus (and index) into `where` and start `rag serve` over the copy."""
    s = source_rag.settings
    shutil.copytree(s.corpus_dir, where / "corpus")
    if with_index:
        shutil.copytree(s.index_dir, where / "index", symlinks=True)
    return start(where / "corpus", where / "index", port, where, env, args)


def start(corpus: Path, index: Path, port: int, cwd: Path, env: dict | None = None, args=()) -> Served:
    """Start `python -m rag.cli serve` (this checkout's code) and wait for its "Serving" line (up to 180 s)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    full_env.update(GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(ROOT), RAG_DATA_DIR=str(cwd / "data"),
                    **(env or {}))
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--corpus-dir", str(corpus), "--index-dir", str(index),
           "--port", str(port), *args]
    proc = subprocess.Popen(cmd, env=full_env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(180, proc.kill)  # a hung start fails the test instead of hanging CI
    watchdog.start()
    seen = []
    try:
        for line in proc.stdout:  # printed once the index and models are loaded and the socket accepts
            seen.append(line)
            if line.startswith("Serving"):
                break
    finally:
        watchdog.cancel()
    if not seen or not seen[-1].startswith("Serving"):
        proc.kill()
        raise RuntimeError("rag serve did not start:\n" + "".join(seen))
    served = Served(f"http://127.0.0.1:{port}/", corpus, index, proc, seen[-1], seen)
    threading.Thread(target=lambda: served.output.extend(proc.stdout), daemon=True).start()  # drained: never blocks
    return served
