"""Embed text with a local sentence-transformers model (offline); vectors are L2-normalised.

Questions and the reader's few question-time sentences go through ONNX Runtime (rag/onnx_embed.py)
without importing torch; index-time batches in bfloat16 (where the CPU has it natively) through
OpenVINO on the same ONNX export, else through torch.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import PACKAGED_MODEL, PRECISIONS, QUERY_PRECISIONS, RUNTIMES, check_choice
from .errors import RagError
from .model import _span_means, _unit, import_torch_first, model_dir  # noqa: F401 (rag.embed's public names)

log = logging.getLogger(__name__)

class Embedder(Protocol):
    model_id: str
    dim: int

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> tuple[np.ndarray, list[np.ndarray]]: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def bf16_native() -> bool:
    """True on CPUs with native bfloat16 matmuls (AMX or AVX512-BF16), where batches embed 2-3x
    faster with vectors within cosine 0.9999 of float32 (bench/compare.py measures nDCG@10)."""
    import torch

    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


BF16_MIN_BATCH = 16


class SentenceTransformerEmbedder:
    """Loads the model lazily, on first use, from disk only (never from a hub)."""

    def __init__(self, model: str = PACKAGED_MODEL, batch_size: int = 16, precision: str = "auto",
                 query_precision: str = "int8", cache_dir: Path | str = Path("~/.cache/rag"), onnx: bool = True,
                 runtime: str = "auto"):
        check_choice("embed_precision", precision, PRECISIONS)
        check_choice("embed_runtime", runtime, RUNTIMES)
        self.runtime = runtime
        self._vino = None
        check_choice("query_precision", query_precision, QUERY_PRECISIONS)
        self.query_precision = query_precision
        self._query_model = None
        self.model_id = model
        self.path = model_dir(model)
        self.batch_size = batch_size
        self.precision = precision
        self.threads = max(1, os.cpu_count() or 1)
        self._model = None
        self._dim = None
        self._bf16 = None
        self.cache_dir = Path(cache_dir)
        self._onnx = None if onnx else False

    @property
    def onnx(self):
        """The torch-free question path (an OnnxEmbedder), or None where it cannot serve this model."""
        if self._onnx is None:
            from .onnx_embed import OnnxEmbedder, supported

            self._onnx = supported(self.path) and OnnxEmbedder(self.model_id, self.batch_size, self.query_precision,
                                                               self.cache_dir)
        return self._onnx or None

    def _via_onnx(self, run):
        """run(the ONNX embedder), or None (then torch answers) when there is none or it fails to load,
        e.g. an unwritable cache_dir or no onnxruntime: said once in the log."""
        return self._or_torch("onnx", run, "the ONNX question path is unavailable ({}); questions are embedded with torch")

    def _or_torch(self, name: str, run, warning: str):
        """run(self.<name>), or None when it is None or fails (then torch embeds): the failure is
        logged once (`warning` formatted with "Error: message") and self._<name> turned off."""
        runtime = getattr(self, name)
        if runtime is None:
            return None
        try:
            return run(runtime)
        except (OSError, ImportError, RagError, RuntimeError) as e:
            log.warning(warning.format(f"{type(e).__name__}: {e}"))
            setattr(self, f"_{name}", False)
            return None

    @property
    def vino(self):
        """The OnnxEmbedder whose OpenVINO bf16 session index-time batches run on, or None (torch):
        with runtime "auto" and precision "auto" or "bf16", where OpenVINO is installed and the CPU
        does bfloat16 natively."""
        if self._vino is None:
            from .onnx_embed import openvino_bf16

            wanted = self.runtime == "auto" and self.precision != "fp32" and openvino_bf16()
            self._vino = (self.onnx if wanted else None) or False
        return self._vino or None

    def _via_vino(self, run):
        """run(the OpenVINO embedder), or None (then torch embeds) when it cannot: said once in the log."""
        return self._or_torch("vino", run, "OpenVINO is unavailable ({}); batches are embedded with torch")

    def preload_reader(self) -> None:
        """Open the fp32 ONNX session the reader's sentences go through in a background thread (a
        no-op once open): a cold `rag ask` overlaps it with the question's own int8 session."""
        onnx = self.onnx
        if onnx is not None and not onnx.is_open("fp32"):
            threading.Thread(target=lambda: self._via_onnx(lambda o: o.session("fp32")), name="onnx-preload",
                             daemon=True).start()

    def prepare_questions(self) -> None:
        """Export the question path's ONNX model(s) now if missing (at index time torch is loaded anyway)."""
        self._via_onnx(lambda o: [o.session(p) for p in dict.fromkeys(("fp32", o.query_precision))])

    @property
    def dim(self) -> int:
        if self._dim is None:
            import json

            cfg = self.path / "config.json"
            self._dim = int(json.loads(cfg.read_text()).get("hidden_size", 0)) if cfg.is_file() else 0
            if not self._dim:
                self._dim = int(self.model.get_sentence_embedding_dimension())
        return self._dim

    @property
    def model(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(self.threads)
            try:  # no "Loading weights" bar on every start
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                hf_logging.set_verbosity_error()
            except ImportError:
                pass
            self._model = SentenceTransformer(str(self.path), device="cpu").eval()
        return self._model

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype="float32")
        if len(texts) <= BF16_MIN_BATCH:  # question time: fp32 either way, ONNX needs no torch
            vecs = self._via_onnx(lambda o: o.embed_documents(list(texts)))
            if vecs is not None:
                return vecs
        if len(texts) > BF16_MIN_BATCH:
            vecs = self._via_vino(lambda v: v.embed_documents(list(texts), "bf16"))
            if vecs is not None:
                return vecs
        import torch

        model = self.model
        # One short text (a query) gains nothing from a thread team and waits longest for one
        # on a busy machine; batches use every core. bfloat16 only pays off for batches.
        single = len(texts) == 1
        # bfloat16 only for index-time batches: a question's dozen sentences (rag.reader) stay fp32, so
        # their scores do not depend on which other sentences share the batch
        with _torch_threads(1 if single else self.threads), torch.inference_mode(), \
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16 and len(texts) > BF16_MIN_BATCH):
            vecs = model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_tensor=True, show_progress_bar=False,
            )
        return _unit(vecs.float().numpy())

    def embed_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each text's vector and, from the same forward pass, one vector per (start, end) char
        span of it: the mean of the span's contextual token embeddings ("late chunking"). So a
        chunk's sentences cost no extra model pass. A span no token falls in gets a NaN row."""
        out = self._via_vino(lambda v: v.embed_spans(texts, spans, "bf16"))
        if out is not None:
            return out
        import torch

        model, tok = self.model, self.model.tokenizer
        vecs, out_spans = [], []
        for i in range(0, len(texts), self.batch_size):
            batch = list(texts[i:i + self.batch_size])
            # padded to a multiple of 32 tokens: a few shapes instead of one per length, so oneDNN's
            # per-shape kernels and their memory stay few (SciFact build peak RSS 1.35 -> 0.95 GB)
            feats = tok(batch, padding=True, pad_to_multiple_of=32, truncation="longest_first", max_length=model.max_seq_length,
                        return_tensors="pt", return_offsets_mapping=True)
            offsets = feats.pop("offset_mapping").numpy()
            with _torch_threads(self.threads), torch.inference_mode(), \
                    torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                out = model.forward(dict(feats))
            vecs.append(out["sentence_embedding"].float().numpy())
            tokens = out["token_embeddings"].float().numpy()
            lengths = feats["attention_mask"].sum(1).numpy()
            for j, text_spans in enumerate(spans[i:i + len(batch)]):
                out_spans.append(_span_means(tokens[j, 1:lengths[j] - 1], offsets[j, 1:lengths[j] - 1], text_spans))
        if not vecs:
            return np.zeros((0, self.dim), dtype="float32"), []
        return _unit(np.concatenate(vecs)), out_spans

    @property
    def bf16(self) -> bool:
        """Whether batches run in bfloat16: "auto" means where the CPU does it natively."""
        if self._bf16 is None:
            self._bf16 = self.precision == "bf16" or (self.precision == "auto" and bf16_native())
        return self._bf16

    @property
    def query_model(self):
        """The model single queries run through. "int8": its Linear layers dynamically quantised
        per channel, which takes one query on one core from ~17 to ~10 ms; query vectors stay
        within cosine ~0.98 of fp32 and SciFact nDCG@10 is unchanged (bench/README.md)."""
        if self._query_model is None:
            model = self.model
            if self.query_precision == "int8":
                import warnings

                import torch

                try:
                    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

                    with warnings.catch_warnings():  # torch 2.13 points at torchao; the eager API still works
                        warnings.simplefilter("ignore")
                        model = quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig},
                                                 dtype=torch.qint8).eval()
                except (ImportError, AttributeError, RuntimeError):  # no quantised kernels: stay fp32
                    model = self.model
            self._query_model = model
        return self._query_model

    def embed_query(self, text: str) -> np.ndarray:
        """ONNX Runtime; else one text straight through the torch model (`encode` spends ~1 ms per
        call walking modules)."""
        vec = self._via_onnx(lambda o: o.embed_query(text))
        if vec is not None:
            return vec
        import torch

        model = self.query_model
        with _torch_threads(1), torch.inference_mode():  # one thread: see embed_documents
            vec = model(model.preprocess([text]))["sentence_embedding"].float().numpy()
        return _unit(vec)[0]


@contextmanager
def _torch_threads(n: int):
    """torch's intra-op threads set to n for the block, then put back."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
