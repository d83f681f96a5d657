"""What a version of the index holds: its manifest (format, model, chunking, store), whether it
fits the config, and the sizes and checksums that prove its files are the ones the build wrote.
The directory around the versions (lock, `current`, swap, sweep) is `rag.versions`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from .config import Settings
from .errors import RagError, why

FORMAT_VERSION = 1
SENTENCE_VECTORS = "chunk-pass"  # sentence vectors pooled from their chunk's pass (older indexes: none recorded)
MARKER = ".rag-version"  # in every version and temp directory a build makes: the index's id
REBUILD = "run `rag index --rebuild`"
# What a build brings an index to without --rebuild: it moves the stored vectors to the configured
# store, or pools the sentence vectors anew. Serving an index that differs here still fails.
UPDATED_BY_BUILD = ("vector_store", "sentence_vectors")
CHECKSUMMED = ("documents.jsonl", "chunks.jsonl", "sentences.jsonl")  # read whole at open anyway


# ---- the manifest and what it must agree with

def manifest_params(settings: Settings, dim: int, store_kind: str) -> dict:
    return {"format_version": FORMAT_VERSION, "model": settings.model, "dim": dim,
            "chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap,
            "embed_titles": settings.embed_titles, "index_sentences": settings.index_sentences,
            "sentence_vectors": SENTENCE_VECTORS if settings.index_sentences else None,
            "vector_store": store_kind}


def built_store(manifest: dict) -> str:
    """The vector-store kind a version was built for (versions from before the setting: faiss)."""
    return manifest.get("vector_store", "faiss")


def differing_params(manifest: dict, settings: Settings, store_kind: str) -> dict[str, tuple]:
    """{name: (built with, configured)} for every manifest parameter that differs from settings."""
    want = manifest_params(settings, manifest.get("dim", 0), store_kind)
    have = {k: built_store(manifest) if k == "vector_store" else manifest.get(k) for k in want}
    return {k: (have[k], want[k]) for k in want if have[k] != want[k]}


def check_compatible(manifest: dict, settings: Settings, index_dir: Path, store_kind: str,
                     ignore: tuple = ()) -> None:
    diff = {k: v for k, v in differing_params(manifest, settings, store_kind).items() if k not in ignore}
    if diff:
        shown = ", ".join(f"{k} {have!r} (config: {want!r})" for k, (have, want) in diff.items())
        raise RagError(f"{index_dir}/ was built with other settings: {shown}; run `rag index --rebuild`")


def read_manifest(root: Path, version: Path) -> dict:
    try:
        manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or "format_version" not in manifest:
            raise ValueError("manifest has no format_version")
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: "[[[[...]]]]" nested past the limit
        raise RagError(f"{root}/ manifest is missing or unreadable ({why(e)}); {REBUILD}") from None
    if manifest["format_version"] != FORMAT_VERSION:
        raise RagError(f"{root}/ has index format {shown(manifest['format_version'], FORMAT_VERSION)}, this version "
                       f"reads {FORMAT_VERSION}; {REBUILD}")
    return manifest


def shown(value, expected) -> str:
    """A value as a message shows it, with its type when only the type differs ("384" vs 384)."""
    if str(value) == str(expected) and type(value) is not type(expected):
        return f"{value!r} ({type(value).__name__}, not {type(expected).__name__})"
    return str(value)


def write_manifest(version: Path, manifest: dict) -> None:
    (version / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))


# ---- files: sizes, checksums, vector fingerprints

def probe_rows(n: int) -> list[int]:
    return sorted({round(i * (n - 1) / 7) for i in range(8)}) if n else []


def fingerprint(rows: np.ndarray) -> str:
    """Hash of a few evenly spaced vectors: tells this build's vector file from another
    build's of the same size, without reading it all."""
    return hashlib.sha256(np.ascontiguousarray(rows, dtype="float32").tobytes()).hexdigest()[:16]


FULL_CHECK_BYTES = 64 << 20  # on every open, files up to this size are hashed whole, larger ones sampled
SAMPLE_BLOCKS, SAMPLE_BYTES = 32, 1 << 16


def digest(path: Path) -> str:
    """xxh3-128 of the whole file, read in 8 MB blocks (~10 GB/s: hashing costs no more than reading)."""
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            h.update(block)
    return h.hexdigest()


def sample_digest(path: Path, size: int) -> str:
    """xxh3-128 of SAMPLE_BLOCKS evenly spaced 64 KB blocks: a fast check of a large file on open."""
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        for i in range(SAMPLE_BLOCKS):
            f.seek(i * max(0, size - SAMPLE_BYTES) // max(1, SAMPLE_BLOCKS - 1))
            h.update(f.read(SAMPLE_BYTES))
    return h.hexdigest()


def file_list(version: Path) -> dict:
    """Size and checksum of every file (and a sampled checksum of large ones), so opening can tell
    a truncated, edited or swapped-in file from the one this build wrote."""
    files = {}
    for p in sorted(version.rglob("*")):
        if p.is_file() and p.name != MARKER:
            name, size = p.relative_to(version).as_posix(), p.stat().st_size
            files[name] = {"bytes": size, "xxh3": digest(p)}
            if size > FULL_CHECK_BYTES:
                files[name]["xxh3_sample"] = sample_digest(p, size)
    return files


def out_of_step(version: Path, problems: list[str]) -> RagError:
    return RagError(f"{version.parent}/ is out of step: {'; '.join(problems)}; {REBUILD}")


def file_problems(version: Path, manifest: dict, full: bool = False) -> tuple[list[str], dict[str, bytes]]:
    """Every file against the size and checksum the build recorded: whole files when `full` (a build
    reusing them, `rag verify`) or small, sampled blocks of large ones otherwise. Returns the problems
    and the bytes of the stores read whole anyway, so they are read once. Versions from before
    checksums carry sha256 of the three stores only; before file lists, nothing (counts still apply)."""
    import xxhash

    problems, data = [], {}
    for name, want in (manifest.get("files") or {}).items():
        p = version / name
        if not p.is_file():
            problems.append(f"{name} is missing")
            continue
        size = p.stat().st_size
        if size != want.get("bytes"):
            problems.append(f"{name} is {size} bytes, the build wrote {want.get('bytes')}")
            continue
        if name in CHECKSUMMED:
            data[name] = p.read_bytes()
        if "xxh3" in want:
            if name in data:
                got = xxhash.xxh3_128_hexdigest(data[name])
            elif full or "xxh3_sample" not in want:
                got = digest(p)
            else:
                got, want = sample_digest(p, size), {"xxh3": want["xxh3_sample"]}
            bad = got != want["xxh3"]
        else:
            bad = "sha256" in want and hashlib.sha256(data.get(name) or p.read_bytes()).hexdigest() != want["sha256"]
        if bad:
            problems.append(f"{name} was changed after the build")
    return problems, data


def check_files(version: Path, manifest: dict, full: bool = False) -> dict[str, bytes]:
    problems, data = file_problems(version, manifest, full)
    if problems:
        raise out_of_step(version, problems)
    return data
