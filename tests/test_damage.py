"""A damaged index is refused with one line naming the problem and the fix; nothing is served
from it. (tests/test_index.py covers a truncated FAISS file, an edited or missing manifest and a
dropped chunk line; these are the subtler cases where counts still match.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag.errors import RagError
from rag.pipeline import Rag
from rag.store import open_index

ROOT = Path(__file__).parents[1]


@pytest.fixture
def other_build(tmp_path, tiny_settings, fake_embedder):
    """A second index of the same corpus with one word changed: same counts, other contents."""
    corpus = tmp_path / "other-corpus"
    shutil.copytree(tiny_settings.corpus_dir, corpus)
    text = (corpus / "bees.txt").read_text()
    (corpus / "bees.txt").write_text(text.replace("Honey bees", "Bumble bees"))
    settings = tiny_settings.replace(corpus_dir=corpus, index_dir=tmp_path / "other-index")
    Rag(settings, embedder=fake_embedder).build(log=lambda *_: None)
    other = Path(settings.index_dir) / "current"
    return other


def rewrite_line(path: Path, n: int, change) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[n] = json.dumps(change(json.loads(lines[n])), ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


DAMAGE = {
    "sentence line dropped": lambda cur, other: (cur / "sentences.jsonl").write_text(
        "".join((cur / "sentences.jsonl").read_text().splitlines(keepends=True)[:-1])),
    "sentence vectors truncated": lambda cur, other: (cur / "sentences.npy").write_bytes(
        (cur / "sentences.npy").read_bytes()[:-512]),
    "chunk offsets edited": lambda cur, other: rewrite_line(
        cur / "chunks.jsonl", 0, lambda row: [row[0], row[1] + 1, row[2], *row[3:]]),
    "document text edited": lambda cur, other: rewrite_line(
        cur / "documents.jsonl", 0, lambda d: {**d, "text": d["text"].replace("e", "a")}),
    "chunk store from another build": lambda cur, other: shutil.copy(other / "chunks.jsonl", cur / "chunks.jsonl"),
    "vectors from another build": lambda cur, other: shutil.copy(other / "vectors.faiss", cur / "vectors.faiss"),
    "sentence vectors from another build": lambda cur, other: shutil.copy(other / "sentences.npy", cur / "sentences.npy"),
    "bm25 file missing": lambda cur, other: (cur / "bm25" / "params.index.json").unlink(),
}
NAMED = {"sentence line dropped": "sentences.jsonl", "sentence vectors truncated": "sentences.npy",
         "chunk offsets edited": "chunks.jsonl", "document text edited": "documents.jsonl",
         "chunk store from another build": "chunks.jsonl", "vectors from another build": "vectors.faiss",
         "sentence vectors from another build": "sentences.npy", "bm25 file missing": "params.index.json"}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damage_with_matching_counts_is_named_in_one_line(tiny_rag, tiny_settings, other_build, damage):
    cur = Path(tiny_settings.index_dir) / "current"
    assert (other_build / "chunks.jsonl").read_bytes() != (cur / "chunks.jsonl").read_bytes()
    DAMAGE[damage](cur, other_build)
    with pytest.raises(RagError) as e:
        open_index(tiny_settings)
    msg = str(e.value)
    assert "\n" not in msg and msg.endswith("run `rag index --rebuild`") and NAMED[damage] in msg, msg
    with pytest.raises(RagError):  # nothing is answered from it either
        Rag(tiny_settings, embedder=tiny_rag.embedder).ask("Who lays eggs in a bee colony?")
    Rag(tiny_settings, embedder=tiny_rag.embedder).build(rebuild=True, log=lambda *_: None)  # the fix works
    assert open_index(tiny_settings).manifest["count"] > 0


def test_cached_vectors_from_another_build_are_not_reused(tiny_rag, tiny_settings, other_build, fake_embedder):
    """The next `rag index` reuses the stored vectors (read back from vectors.faiss) for unchanged text."""
    cur = Path(tiny_settings.index_dir) / "current"
    shutil.copy(other_build / "vectors.faiss", cur / "vectors.faiss")
    (Path(tiny_settings.corpus_dir) / "owls.txt").write_text("Barn owls have heart-shaped faces.")
    with pytest.raises(RagError, match=r"vectors.faiss (holds other vectors|was changed after the build).*run `rag index --rebuild`"):
        Rag(tiny_settings, embedder=fake_embedder).build(log=lambda *_: None)


def test_an_index_without_a_file_list_still_has_its_offsets_checked(tiny_rag, tiny_settings):
    """Indexes built before the manifest listed its files: offsets past a document's end are caught."""
    cur = Path(tiny_settings.index_dir) / "current"
    manifest = json.loads((cur / "manifest.json").read_text())
    for key in ("files", "probe"):
        manifest.pop(key)
    (cur / "manifest.json").write_text(json.dumps(manifest))
    assert open_index(tiny_settings).manifest["count"] == manifest["count"]  # still opens when intact
    rewrite_line(cur / "chunks.jsonl", 0, lambda row: [row[0], row[1], row[2] + 10_000, *row[3:]])
    with pytest.raises(RagError, match=r"chunks.jsonl has a chunk .* not in documents.jsonl; run `rag index --rebuild`"):
        open_index(tiny_settings)


def test_a_dangling_current_link_names_the_fix(tiny_rag, tiny_settings):
    cur = Path(tiny_settings.index_dir) / "current"
    shutil.rmtree(cur.resolve())
    with pytest.raises(RagError) as e:
        open_index(tiny_settings)
    assert "which is missing" in str(e.value) and str(e.value).endswith("run `rag index --rebuild`")


def run(args, settings):
    env = {**os.environ, "RAG_CORPUS_DIR": str(settings.corpus_dir), "RAG_INDEX_DIR": str(settings.index_dir)}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


def test_rag_search_and_ask_print_one_line_on_a_damaged_index(tiny_rag, tiny_settings, other_build):
    cur = Path(tiny_settings.index_dir) / "current"
    shutil.copy(other_build / "chunks.jsonl", cur / "chunks.jsonl")
    for args in (["search", "queen bee"], ["ask", "Who lays eggs in a bee colony?"]):
        out = run(args, tiny_settings)
        assert out.returncode == 1 and out.stdout == "" and "Traceback" not in out.stderr
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: ") and "chunks.jsonl" in out.stderr
        assert out.stderr.rstrip().endswith("run `rag index --rebuild`")
    (cur / "manifest.json").unlink()
    out = run(["ask", "Who lays eggs in a bee colony?"], tiny_settings)
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "manifest is missing" in out.stderr
