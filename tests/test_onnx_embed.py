"""The torch-free question path: ONNX Runtime vectors equal the torch ones, the export is cached by
the model's hash and written crash-safely, and a fresh `rag ask` never imports torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag import onnx_embed
from rag.embed import model_dir
from rag.errors import RagError

ROOT = Path(__file__).parents[1]


def _questions(n: int = 24) -> list[str]:
    rows = [json.loads(line) for line in (ROOT / "eval" / "gold.jsonl").read_text().splitlines() if line.strip()]
    # eval questions plus odd inputs: non-ASCII, a very long one (truncated at max_seq_length), one word
    return [r["question"] for r in rows[:n]] + ["Ünïcödé, 東京 and 🙂 — what?", "manufacturing " * 400, "Germany"]


@pytest.fixture(scope="module")
def both():
    """(torch embedder, ONNX embedder) over the packaged model; the ONNX one exported into the default cache."""
    from rag.embed import SentenceTransformerEmbedder

    torch_emb = SentenceTransformerEmbedder(precision="fp32", query_precision="fp32", onnx=False)
    torch_emb.model
    return torch_emb, onnx_embed.OnnxEmbedder(query_precision="fp32")


@pytest.mark.real_model
def test_onnx_fp32_vectors_match_torch(both):
    torch_emb, onnx_emb = both
    qs = _questions()
    a = np.stack([onnx_emb.embed_query(q) for q in qs])
    b = np.stack([torch_emb.embed_query(q) for q in qs])
    cos = (a * b).sum(1)
    assert cos.min() >= 0.999, (cos.min(), qs[int(cos.argmin())][:80])
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    # the reader's question-time sentences: a padded batch of different lengths
    docs = onnx_emb.embed_documents(qs[:12])
    assert ((docs * torch_emb.embed_documents(qs[:12])).sum(1)).min() >= 0.999
    assert np.allclose(docs[3], onnx_emb.embed_documents([qs[3]])[0], atol=1e-5)  # padding changes nothing


@pytest.mark.real_model
def test_onnx_late_chunking_matches_torch(both):
    torch_emb, onnx_emb = both
    text = "The Eiffel Tower is in Paris. It was completed in 1889. Bees make honey."
    spans = [[(0, 29), (30, 55), (56, len(text))], []]
    va, sa = onnx_emb.embed_spans([text, "Short."], spans)
    vb, sb = torch_emb.embed_spans([text, "Short."], spans)
    assert (va * vb).sum(1).min() >= 0.999
    assert (sa[0] * sb[0]).sum(1).min() >= 0.999 and sa[1].shape == (0, onnx_emb.dim)


@pytest.mark.real_model
def test_int8_query_vectors_stay_close_to_fp32(both):
    _, fp32 = both
    int8 = onnx_embed.OnnxEmbedder(query_precision="int8")
    qs = _questions(12)
    cos = [float(int8.embed_query(q) @ fp32.embed_query(q)) for q in qs]
    assert min(cos) >= 0.98 and int8.session("int8") is not int8.session("fp32")


@pytest.mark.real_model
def test_the_default_embedder_asks_through_onnx_without_loading_torch_model(both):
    from rag.embed import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder(query_precision="fp32")
    q = "When was Made in China 2025 launched?"
    assert float(emb.embed_query(q) @ both[0].embed_query(q)) >= 0.999
    emb.embed_documents(["one sentence", "another one"])
    assert emb._model is None  # question-time work never loaded the torch model


def test_export_is_keyed_by_the_model_files_and_written_atomically(tmp_path, monkeypatch):
    src = model_dir("all-MiniLM-L6-v2")
    model = tmp_path / "model"
    shutil.copytree(src, model, ignore=shutil.ignore_patterns("*.safetensors"))
    (model / "model.safetensors").write_bytes(b"w" * 300_000)
    key = onnx_embed.model_key(model)
    assert key == onnx_embed.model_key(model)
    (model / "model.safetensors").write_bytes(b"w" * 150_000 + b"x" + b"w" * 149_999)  # same size, other weights
    assert onnx_embed.model_key(model) != key
    cache = tmp_path / "cache"

    def crash(path, out):  # dies half way through writing
        Path(out).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx_embed, "_torch_export", crash)
    with pytest.raises(KeyboardInterrupt):
        onnx_embed.export(model, cache)
    assert list((cache / "onnx").iterdir()) == []  # neither a half file under the name nor a temp file

    calls = []
    monkeypatch.setattr(onnx_embed, "_torch_export", lambda path, out: calls.append(Path(out).write_bytes(b"onnx")))
    first = onnx_embed.export(model, cache)
    assert first == onnx_embed.export(model, cache) and len(calls) == 1  # cached: exported once
    assert first.name == f"model-{onnx_embed.model_key(model)}-fp32.onnx" and first.read_bytes() == b"onnx"


def test_an_unreadable_cached_model_is_one_clear_error(tmp_path, monkeypatch):
    emb = onnx_embed.OnnxEmbedder(cache_dir=tmp_path)
    target = onnx_embed.onnx_file(tmp_path, emb.path, "fp32")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not a model")
    with pytest.raises(RagError, match=r"cached ONNX model .* is unreadable .*delete it"):
        emb.embed_documents(["x"])


def test_a_model_without_a_fast_tokenizer_is_not_claimed(tmp_path):
    shutil.copytree(model_dir("all-MiniLM-L6-v2"), tmp_path / "m", ignore=shutil.ignore_patterns("*.safetensors", "tokenizer.json"))
    assert onnx_embed.supported(model_dir("all-MiniLM-L6-v2"))
    assert not onnx_embed.supported(tmp_path / "m")


def test_hidden_imports_fail_in_the_hiding_thread_only():
    import threading

    from rag.imports import hidden

    sys.modules.pop("colorsys", None)
    other = {}
    with hidden("colorsys"):
        with pytest.raises(ImportError):
            import colorsys  # noqa: F401
        t = threading.Thread(target=lambda: other.update(mod=__import__("colorsys")))
        t.start()
        t.join()
    assert other["mod"].__name__ == "colorsys"  # another thread imported it meanwhile
    with hidden("colorsys"):  # already imported: left alone
        import colorsys  # noqa: F401,F811


_ASK_AND_LIST_MODULES = ("import sys, json; from rag.cli import main; rc = main(sys.argv[1:]); "
                         "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'transformers', 'numba', 'scipy') if m in sys.modules); "
                         "print('MODULES', json.dumps(heavy), file=sys.stderr); sys.exit(rc)")


@pytest.mark.real_model
def test_rag_ask_in_a_fresh_process_never_imports_torch(bundled_rag):
    s = bundled_rag.settings  # built with the real model: the build exported the ONNX question path
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_INDEX_DIR": str(s.index_dir), "RAG_CORPUS_DIR": str(s.corpus_dir),
           "RAG_BACKEND": "extractive", "RAG_CACHE_DIR": str(s.cache_dir)}
    for command in (["ask", "When was Made in China 2025 launched?", "--json"], ["search", "Industry 4.0", "--json"]):
        out = subprocess.run([sys.executable, "-c", _ASK_AND_LIST_MODULES, *command], capture_output=True, text=True,
                             cwd=ROOT, env=env, timeout=180)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "MODULES []" in out.stderr, out.stderr[-2000:]
    answer = json.loads(subprocess.run([sys.executable, "-c", _ASK_AND_LIST_MODULES, "ask", "When was Made in China "
                                        "2025 launched?", "--json"], capture_output=True, text=True, cwd=ROOT,
                                       env=env, timeout=180).stdout)
    assert "2015" in answer["short_answer"] and answer["citations"]


def test_an_unusable_onnx_path_falls_back_to_torch_with_one_warning(caplog):
    from rag.embed import SentenceTransformerEmbedder

    class Broken:
        calls = 0

        def embed_query(self, text):
            Broken.calls += 1
            raise OSError("read-only file system: ~/.cache/rag")

    emb = SentenceTransformerEmbedder()
    emb._onnx = Broken()
    with caplog.at_level("WARNING", logger="rag.embed"):
        assert emb._via_onnx(lambda o: o.embed_query("q")) is None  # the caller then uses torch
        assert emb._via_onnx(lambda o: o.embed_query("q")) is None
    assert Broken.calls == 1 and emb.onnx is None  # not retried on every question
    assert [r.getMessage() for r in caplog.records] == [
        "the ONNX question path is unavailable (OSError: read-only file system: ~/.cache/rag); "
        "questions are embedded with torch"]
    assert SentenceTransformerEmbedder(onnx=False).onnx is None
