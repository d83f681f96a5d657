"""Embed questions with ONNX Runtime and the `tokenizers` fast tokenizer: no torch, no
sentence-transformers, so `rag ask` starts in about a second instead of eight.

The model is exported to ONNX once, with torch (loaded anyway when an index is built; else on the
first question that finds no export), and cached under `cache_dir` keyed by a hash of the model's
files. Tokenisation (truncation at max_seq_length), mean pooling over the attention mask and L2
normalisation are done exactly as sentence-transformers does them: fp32 vectors match the torch
ones to cosine > 0.9999 (tests/test_onnx_embed.py). "int8" query precision is ONNX Runtime's
dynamic quantisation of the same export (MatMul weights per channel).

Index-time batches ("bf16") run the same export on OpenVINO's CPU plugin in bfloat16 where the CPU
does it natively (AMX / AVX512-BF16): its fused attention and prepacked weights embed SciFact ~1.8x
faster than torch's bf16 autocast, with vectors within cosine 0.9999 of fp32 (bench/README.md).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np

from .config import PACKAGED_MODEL, QUERY_PRECISIONS, check_choice
from .model import _span_means, _unit, mean_pool, model_dir
from .errors import RagError

EXPORT_VERSION = 1  # part of the cache key: bump when the exported graph changes
OPSET = 17
SMALL_FILES = ("config.json", "tokenizer.json", "sentence_bert_config.json", "1_Pooling/config.json", "modules.json")
_export_lock = threading.Lock()


def supported(path: Path) -> bool:
    """Whether the model directory is one this path reproduces: a fast tokenizer and mean pooling."""
    pooling = path / "1_Pooling" / "config.json"
    try:
        mean = json.loads(pooling.read_text()).get("pooling_mode_mean_tokens", False) if pooling.is_file() else False
        modules = [m.get("type", "") for m in json.loads((path / "modules.json").read_text())]
    except (OSError, ValueError, AttributeError):
        return False
    known = all(t.rsplit(".", 1)[-1] in ("Transformer", "Pooling", "Normalize") for t in modules)
    return bool(mean and known and (path / "tokenizer.json").is_file() and (path / "config.json").is_file())


def model_key(path: Path) -> str:
    """A hash of the model's files: the small ones whole, the weights by size and 32 evenly spaced
    64 KB blocks (as the index samples its large files on open: ~1 ms instead of ~40 ms per start)."""
    import xxhash

    h = xxhash.xxh3_128(f"export-{EXPORT_VERSION}-opset-{OPSET}".encode())
    for name in SMALL_FILES:
        p = path / name
        h.update(f"{name}:".encode() + (p.read_bytes() if p.is_file() else b"-") + b";")
    for p in sorted(path.glob("*.safetensors")) or sorted(path.glob("pytorch_model*.bin")):
        size = p.stat().st_size
        h.update(f"{p.name}:{size}:".encode())
        with open(p, "rb") as f:
            for i in range(32):
                f.seek(i * max(0, size - (1 << 16)) // 31)
                h.update(f.read(1 << 16))
    return h.hexdigest()[:16]


def onnx_file(cache_dir: Path, path: Path, precision: str) -> Path:
    return Path(cache_dir).expanduser() / "onnx" / f"{path.name}-{model_key(path)}-{precision}.onnx"


def _write_atomically(target: Path, write) -> None:
    """write(tmp_path) then rename into place: a crash leaves no half-written model under the name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{target.name}")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def export(path: Path, cache_dir: Path, precision: str = "fp32") -> Path:
    """The cached ONNX file of the model at `path` (exported now if missing; needs torch then)."""
    target = onnx_file(cache_dir, path, precision)
    with _export_lock:
        if target.is_file():
            return target
        if precision == "int8":
            fp32 = export_unlocked(path, cache_dir)
            _write_atomically(target, lambda tmp: _quantize(fp32, tmp))
        else:
            export_unlocked(path, cache_dir)
    return target


def export_unlocked(path: Path, cache_dir: Path) -> Path:
    target = onnx_file(cache_dir, path, "fp32")
    if not target.is_file():
        _write_atomically(target, lambda tmp: _torch_export(path, tmp))
    return target


def _torch_export(path: Path, out: Path) -> None:
    import inspect
    import warnings

    from .model import import_torch_first

    import_torch_first()
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    model = AutoModel.from_pretrained(str(path), attn_implementation="eager").eval()
    accepted = inspect.signature(model.forward).parameters
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in accepted]

    class Hidden(torch.nn.Module):  # positional inputs in `names` order -> the token embeddings
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            return self.model(**dict(zip(names, inputs))).last_hidden_state

    sample = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    args = tuple(torch.ones_like(sample) if n == "attention_mask" else
                 torch.zeros_like(sample) if n == "token_type_ids" else sample for n in names)
    axes = {n: {0: "batch", 1: "tokens"} for n in names + ["hidden"]}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")
        torch.onnx.export(Hidden(), args, str(out), input_names=names, output_names=["hidden"],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def _quantize(fp32: Path, out: Path) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.WARNING)  # its "consider pre-processing" hint goes to the root logger
    try:
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
    finally:
        logging.disable(logging.NOTSET)


def openvino_bf16() -> bool:
    """Whether OpenVINO is installed and its CPU plugin runs bfloat16 natively."""
    try:
        import openvino as ov

        return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # not installed, or no CPU plugin: OpenVINO raises RuntimeError and kin
        return False


class OnnxEmbedder:
    """The Embedder protocol on ONNX Runtime; sessions are created lazily, on first use."""

    def __init__(self, model: str = PACKAGED_MODEL, batch_size: int = 16, query_precision: str = "int8",
                 cache_dir: Path | str = Path("~/.cache/rag"), threads: int | None = None):
        check_choice("query_precision", query_precision, QUERY_PRECISIONS)
        self.model_id = model
        self.path = model_dir(model)
        if not supported(self.path):
            raise RagError(f"model {model!r} has no tokenizer.json or no mean pooling; the ONNX question path "
                           f"cannot reproduce it")
        self.batch_size = batch_size
        self.query_precision = query_precision
        self.cache_dir = Path(cache_dir)
        self.threads = threads or max(1, os.cpu_count() or 1)
        self._sessions: dict[str, object] = {}
        self._tokenizer = None
        self._lock = threading.Lock()
        cfg = json.loads((self.path / "config.json").read_text())
        self.dim = int(cfg.get("hidden_size") or cfg.get("dim") or 0)
        st = self.path / "sentence_bert_config.json"
        self.max_seq_length = int(json.loads(st.read_text()).get("max_seq_length") or 512) if st.is_file() else 512

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
            # as sentence-transformers calls it: truncate at max_seq_length, pad to the longest
            tok.enable_truncation(self.max_seq_length)
            pad = tok.padding or {}
            tok.enable_padding(pad_id=pad.get("pad_id", 0), pad_type_id=pad.get("pad_type_id", 0),
                               pad_token=pad.get("pad_token", "[PAD]"))
            self._tokenizer = tok
        return self._tokenizer

    def is_open(self, precision: str) -> bool:
        """Whether the session of this precision exists already (`session` would return at once)."""
        return precision in self._sessions

    def session(self, precision: str = "fp32"):
        """The ONNX Runtime session of this precision (the model exported first if it never was)."""
        with self._lock:
            if precision == "bf16" and precision not in self._sessions:
                self._sessions[precision] = self._openvino(export(self.path, self.cache_dir, "fp32"))
            if precision not in self._sessions:
                try:
                    import onnxruntime as ort
                except ImportError:
                    raise RagError("the question path needs onnxruntime; run `pip install -r requirements.txt`") from None
                opts = ort.SessionOptions()
                # The question (int8): one thread, a few dozen tokens gain nothing from a team that
                # waits longest on a busy machine. The reader's dozen sentences (fp32): every core,
                # SciFact warm ask p50 264 -> 169 ms; idle workers sleep instead of spinning.
                opts.intra_op_num_threads = self.threads if precision == "fp32" else 1
                opts.inter_op_num_threads = 1
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
                opts.log_severity_level = 3
                path = export(self.path, self.cache_dir, precision)
                try:
                    self._sessions[precision] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
                except Exception as e:  # onnxruntime's errors derive from Exception only
                    raise RagError(f"the cached ONNX model {path} is unreadable ({type(e).__name__}); "
                                   f"delete it and it is exported again") from None
            return self._sessions[precision]

    def _openvino(self, path: Path):
        """The export compiled for OpenVINO's CPU plugin in bfloat16, one stream on every core."""
        try:
            import openvino as ov
        except ImportError:
            raise RagError("bfloat16 batches on OpenVINO need the openvino package; run `pip install -r "
                           "requirements.txt` or set RAG_EMBED_RUNTIME=torch") from None
        core = ov.Core()
        try:
            return core.compile_model(core.read_model(str(path)), "CPU", {
                "INFERENCE_PRECISION_HINT": "bf16", "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": self.threads})
        except RuntimeError:
            raise RagError(f"the cached ONNX model {path} is unreadable; delete it and it is exported again") from None

    def _forward(self, texts: list[str], precision: str):
        """(token embeddings, attention mask, char offsets) of one batch."""
        enc = self.tokenizer.encode_batch(list(texts))
        feeds = {"input_ids": np.array([e.ids for e in enc], dtype="int64"),
                 "attention_mask": np.array([e.attention_mask for e in enc], dtype="int64"),
                 "token_type_ids": np.array([e.type_ids for e in enc], dtype="int64")}
        offsets = np.array([e.offsets for e in enc], dtype="int64").reshape(len(enc), -1, 2)
        sess = self.session(precision)
        if precision == "bf16":  # OpenVINO; padded to a multiple of 32 tokens: a few shapes, not one per length
            pad = -feeds["input_ids"].shape[1] % 32
            feeds = {k: np.pad(v, ((0, 0), (0, pad))) for k, v in feeds.items()}
            hidden = sess.create_infer_request().infer({i.get_any_name(): feeds[i.get_any_name()] for i in sess.inputs})[0]
        else:
            hidden = sess.run(None, {i.name: feeds[i.name] for i in sess.get_inputs()})[0]
        return hidden, feeds["attention_mask"], offsets

    def _embed(self, texts: list[str], precision: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype="float32")
        out = []
        for i in range(0, len(texts), self.batch_size):
            hidden, mask, _ = self._forward(texts[i:i + self.batch_size], precision)
            out.append(mean_pool(hidden, mask))
        return _unit(np.concatenate(out))

    def embed_documents(self, texts: list[str], precision: str = "fp32") -> np.ndarray:
        return self._embed(list(texts), precision)

    def embed_query(self, text: str) -> np.ndarray:
        return self._embed([text], self.query_precision)[0]

    def embed_spans(self, texts: list[str], spans: list[list[tuple[int, int]]],
                    precision: str = "fp32") -> tuple[np.ndarray, list[np.ndarray]]:
        """As SentenceTransformerEmbedder.embed_spans (late chunking); "bf16" runs on OpenVINO."""
        vecs, out_spans = [], []
        for i in range(0, len(texts), self.batch_size):
            batch = list(texts[i:i + self.batch_size])
            hidden, mask, offsets = self._forward(batch, precision)
            vecs.append(mean_pool(hidden, mask))
            lengths = mask.sum(1)
            for j, text_spans in enumerate(spans[i:i + len(batch)]):
                n = int(lengths[j])
                out_spans.append(_span_means(hidden[j, 1:n - 1], offsets[j, 1:n - 1], text_spans))
        if not vecs:
            return np.zeros((0, self.dim), dtype="float32"), []
        return _unit(np.concatenate(vecs)), out_spans

