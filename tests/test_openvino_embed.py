"""Index-time bf16 batches on OpenVINO: the same vectors as torch in fp32, a build that never
imports torch, and torch again when OpenVINO is switched off or fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.embed import SentenceTransformerEmbedder
from rag.errors import RagError
from rag.onnx_embed import openvino_bf16

ROOT = Path(__file__).parents[1]
native = pytest.mark.skipif(not openvino_bf16(), reason="OpenVINO with native bfloat16 is not on this machine")


def _texts() -> list[str]:
    """Corpus chunks of many lengths, one past the model's 256 tokens (truncated), and odd text."""
    text = (ROOT / "corpus" / "made-in-china-2025-explained.txt").read_text()
    paras = [p for p in text.split("\n\n") if p.strip()]
    return paras[:18] + [" ".join(paras[:6]), "Ünïcödé, 東京 and 🙂 — what?", "Germany"]


@pytest.mark.real_model
@native
def test_openvino_batches_match_torch_fp32():
    texts = _texts()
    spans = [[(0, len(t) // 3), (len(t) // 3, len(t))] for t in texts]
    vino = SentenceTransformerEmbedder()
    assert vino.vino is not None  # the default on this CPU
    exact = SentenceTransformerEmbedder(precision="fp32", runtime="torch", onnx=False)
    assert exact.vino is None
    va, sa = vino.embed_spans(texts, spans)
    vb, sb = exact.embed_spans(texts, spans)
    assert va.shape == vb.shape == (len(texts), 384) and np.allclose(np.linalg.norm(va, axis=1), 1.0, atol=1e-5)
    assert (va * vb).sum(1).min() >= 0.999
    a, b = np.concatenate(sa), np.concatenate(sb)
    a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    assert (a * b).sum(1).min() >= 0.999
    docs = vino.embed_documents(texts)  # more than 16 texts: a batch, on OpenVINO too
    assert (docs * vb).sum(1).min() >= 0.999
    assert "torch" not in sys.modules or vino._model is None  # OpenVINO never loaded the torch model


@pytest.mark.real_model
@native
def test_a_build_on_openvino_never_imports_torch(tmp_path):
    SentenceTransformerEmbedder().vino.session("bf16")  # the ONNX export is cached, as after any first build
    shutil.copytree(ROOT / "corpus", tmp_path / "corpus")
    code = ("import sys, json; from rag.pipeline import Rag; from rag.config import load_settings; "
            "r = Rag(load_settings()).build(log=lambda m: None); "
            "hits = Rag(load_settings()).search('Which country inspired Made in China 2025?'); "
            "print(json.dumps([r.chunks, 'torch' in sys.modules, hits[0].chunk.text]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_CORPUS_DIR": str(tmp_path / "corpus"),
           "RAG_INDEX_DIR": str(tmp_path / "index")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    chunks, torch_loaded, top = json.loads(out.stdout.strip().splitlines()[-1])
    assert chunks > 20 and not torch_loaded
    assert "Industry 4.0" in top


def test_torch_runtime_fp32_and_bad_values():
    assert SentenceTransformerEmbedder(runtime="torch").vino is None
    assert SentenceTransformerEmbedder(precision="fp32").vino is None
    with pytest.raises(RagError, match="embed_runtime 'gpu' is unknown; use one of auto, torch"):
        SentenceTransformerEmbedder(runtime="gpu")
    out = subprocess.run([sys.executable, "-m", "rag.cli", "index", "--embed-runtime", "gpu"], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 1 and out.stderr.strip() == "error: embed_runtime 'gpu' is unknown; use one of auto, torch"


def test_an_openvino_failure_falls_back_to_torch_with_one_warning(caplog):
    class Broken:
        calls = 0

        def embed_spans(self, texts, spans, precision):
            Broken.calls += 1
            raise RagError("the cached ONNX model /x.onnx is unreadable; delete it and it is exported again")

    emb = SentenceTransformerEmbedder()
    emb._vino = Broken()
    with caplog.at_level("WARNING", logger="rag.embed"):
        assert emb._via_vino(lambda v: v.embed_spans(["a"], [[]], "bf16")) is None  # the caller then uses torch
        assert emb._via_vino(lambda v: v.embed_spans(["a"], [[]], "bf16")) is None
    assert Broken.calls == 1 and emb.vino is None  # not retried on every batch
    assert [r.getMessage() for r in caplog.records] == [
        "OpenVINO is unavailable (RagError: the cached ONNX model /x.onnx is unreadable; delete it and it is "
        "exported again); batches are embedded with torch"]
