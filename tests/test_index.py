import json
import os
from pathlib import Path

import numpy as np
import pytest

from rag.errors import RagError
from rag.pipeline import Rag
from rag.store import open_index


def _build(settings, embedder, **kw):
    embedder.calls.clear()
    report = Rag(settings, embedder=embedder).build(log=lambda *_: None, **kw)
    return report, list(embedder.calls)


def test_incremental_add_change_delete(tiny_settings, fake_embedder):
    corpus = Path(tiny_settings.corpus_dir)
    report, calls = _build(tiny_settings, fake_embedder)
    assert sorted(report.added) == ["bees.txt", "rome.html", "solar.md", "tea.txt"] and calls

    report, calls = _build(tiny_settings, fake_embedder)
    assert not report.changed_anything and calls == [] and report.embedded == 0

    (corpus / "owls.txt").write_text("Owls hunt mice at night. Barn owls have heart-shaped faces.")
    (corpus / "bees.txt").write_text("Honey bees live in colonies. Drones are male bees that do not sting.")
    (corpus / "rome.html").unlink()
    report, calls = _build(tiny_settings, fake_embedder)
    assert report.added == ["owls.txt"] and report.changed == ["bees.txt"] and report.deleted == ["rome.html"]
    assert sorted(report.unchanged) == ["solar.md", "tea.txt"]
    # Only text that is new is embedded: nothing from solar/tea, and the unchanged bee sentence is reused.
    assert calls and all("Solar" not in c and "Tea" not in c for c in calls)
    assert "Honey bees live in colonies." not in calls
    assert any("Drones" in c for c in calls) and any("Owls" in c for c in calls)

    index = open_index(tiny_settings)
    assert set(index.documents) == {"bees.txt", "owls.txt", "solar.md", "tea.txt"}
    rag = Rag(tiny_settings, embedder=fake_embedder)
    assert rag.search("barn owls heart-shaped faces", k=1)[0].chunk.doc_id == "owls.txt"
    assert all(h.chunk.doc_id != "rome.html" for h in rag.search("Rubicon Caesar", k=5))


def test_other_model_or_chunking_fails_with_one_clear_line(tiny_rag, tiny_settings):
    for change, word in (({"model": "/some/other-model"}, "model"), ({"chunk_size": "100"}, "chunk_size")):
        with pytest.raises(RagError) as e:
            open_index(tiny_settings.replace(**change))
        msg = str(e.value)
        assert word in msg and "rag index --rebuild" in msg and "\n" not in msg


def test_rebuild_replaces_an_incompatible_index(tiny_rag, tiny_settings, fake_embedder):
    other = tiny_settings.replace(chunk_size="64")
    with pytest.raises(RagError):
        Rag(other, embedder=fake_embedder).build(log=lambda *_: None)
    report = Rag(other, embedder=fake_embedder).build(rebuild=True, log=lambda *_: None)
    assert len(report.added) == 4 and open_index(other).manifest["chunk_size"] == 64


def test_crash_mid_build_keeps_previous_index(tiny_rag, tiny_settings, fake_embedder, monkeypatch):
    import rag.index as index_mod

    before = open_index(tiny_settings).manifest["built_at"]
    (Path(tiny_settings.corpus_dir) / "new.txt").write_text("Volcanoes erupt lava and ash.")

    def boom(*a, **k):
        raise KeyboardInterrupt("simulated crash while writing")

    monkeypatch.setattr(index_mod.lexical, "build", boom)
    with pytest.raises(KeyboardInterrupt):
        Rag(tiny_settings, embedder=fake_embedder).build(log=lambda *_: None)
    monkeypatch.undo()
    idx = open_index(tiny_settings)  # previous index still loads and answers
    assert idx.manifest["built_at"] == before and "new.txt" not in idx.documents
    assert Rag(tiny_settings, embedder=fake_embedder).search("queen bee eggs", k=1)[0].chunk.doc_id == "bees.txt"
    report = Rag(tiny_settings, embedder=fake_embedder).build(log=lambda *_: None)
    assert report.added == ["new.txt"]
    leftovers = [p.name for p in Path(tiny_settings.index_dir).iterdir() if p.name.startswith((".tmp-", ".current-"))]
    assert leftovers == [] and len([p for p in Path(tiny_settings.index_dir).iterdir() if p.name.startswith("v-")]) == 1


@pytest.mark.parametrize("damage", ["truncate_faiss", "edit_manifest", "delete_manifest", "drop_chunk"])
def test_damaged_index_gives_one_line_and_the_fix(tiny_rag, tiny_settings, damage):
    cur = Path(tiny_settings.index_dir) / "current"
    if damage == "truncate_faiss":
        data = (cur / "vectors.faiss").read_bytes()
        (cur / "vectors.faiss").write_bytes(data[: len(data) // 2])
    elif damage == "edit_manifest":
        (cur / "manifest.json").write_text('{"format_version": 1, "model": ')
    elif damage == "delete_manifest":
        (cur / "manifest.json").unlink()
    else:
        lines = (cur / "chunks.jsonl").read_text().splitlines()
        (cur / "chunks.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(RagError) as e:
        open_index(tiny_settings)
    assert "rag index --rebuild" in str(e.value) and "\n" not in str(e.value)


def test_second_concurrent_indexer_exits_with_one_line(tiny_settings, fake_embedder):
    from rag.versions import locked

    with locked(Path(tiny_settings.index_dir)):
        with pytest.raises(RagError, match="already updating"):
            Rag(tiny_settings, embedder=fake_embedder).build(log=lambda *_: None)


def test_manifest_records_model_dim_chunking_and_hashes(tiny_rag, tiny_settings):
    m = json.loads((Path(tiny_settings.index_dir) / "current" / "manifest.json").read_text())
    assert m["model"] == "all-MiniLM-L6-v2" and m["dim"] == 256 and m["format_version"] == 1
    assert m["chunk_size"] == tiny_settings.chunk_size and m["chunk_overlap"] == tiny_settings.chunk_overlap
    assert all(len(d["hash"]) == 16 and d["chunks"] >= 1 for d in m["documents"])
    assert os.path.islink(Path(tiny_settings.index_dir) / "current")


def _clustered(n: int, dim: int = 64, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    x = centres[rng.integers(0, 20, n)] + 0.3 * rng.standard_normal((n, dim))
    return np.ascontiguousarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype="float32")


def test_above_flat_threshold_hnsw_keeps_recall_and_its_tuned_ef_search(tmp_path):
    import numpy as np

    from rag.vectorstore import ANN_RECALL, read_faiss, write_faiss

    data = _clustered(4100)
    vecs, q = data[:4000], data[4000:]  # the last 100 are held out as questions
    _, info = write_faiss(vecs, tmp_path / "v.faiss", flat_threshold=1000, log=lambda *_: None)
    assert info["type"] == "hnsw" and info["recall_at_10"] >= ANN_RECALL
    loaded = read_faiss(tmp_path / "v.faiss")  # memory-mapped; efSearch travels with the file
    assert loaded.hnsw.efSearch == info["ef_search"] and loaded.ntotal == 4000
    truth = np.argsort(-(q @ vecs.T), axis=1)[:, :10]
    _, found = loaded.search(q, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])
    assert recall >= ANN_RECALL - 0.02  # held-out queries, not the tuning probes


def test_when_no_ef_search_reaches_the_recall_target_exact_search_is_kept(tmp_path, monkeypatch):
    import rag.vectorstore as ix

    monkeypatch.setattr(ix, "EF_SEARCH", (1,))  # an efSearch far too small for 0.95
    said = []
    index, info = ix.write_faiss(_clustered(3000), tmp_path / "v.faiss", flat_threshold=1000, log=said.append)
    assert info["type"] == "flat" and info["hnsw_recall_at_10"] < ix.ANN_RECALL
    assert type(index).__name__ == "IndexFlatIP" and "keeping exact search" in said[0]


def test_build_records_the_index_type_in_the_manifest(tiny_settings, fake_embedder):
    s = tiny_settings.replace(flat_threshold=1)
    _build(s, fake_embedder)
    m = json.loads((Path(s.index_dir) / "current" / "manifest.json").read_text())
    assert m["index_type"] == m["ann"]["type"] and m["ann"]["type"] in ("hnsw", "flat")
    assert Rag(s, embedder=fake_embedder).search("Germany industry")


def _cosine(a, b) -> float:
    """Sentence vectors are stored as int8 with a per-row scale: equal to the exact ones up to that."""
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_sentence_vectors_come_from_their_chunks_pass(tiny_settings, fake_embedder):
    """Only chunks go through the model; each sentence's vector is read off its chunk's pass at
    the right offsets (the fake gives a span the bag-of-words vector of exactly its text)."""
    report, calls = _build(tiny_settings, fake_embedder)
    index = open_index(tiny_settings, load_vectors=True)
    assert report.embedded == len(calls) == len(index.chunks)
    assert all(any(call.endswith(c.text) for c in index.chunks) for call in calls)  # no sentence alone
    assert len(index.sentences) > len(index.chunks)
    for (doc_id, s, e), vec in zip(index.sentences, index.sentence_vectors):
        assert _cosine(vec, fake_embedder._vec(index.documents[doc_id].text[s:e])) >= 0.9999, (doc_id, s, e)
    rows = [json.loads(line) for line in (index.path / "sentences.jsonl").read_text().splitlines()]
    assert all(len(r) == 4 for r in rows)  # doc, start, end, where the vector came from

    # A sentence no chunk holds whole (one run-on sentence over several chunks) is embedded alone.
    long = " ".join(f"word{i}" for i in range(90))
    (Path(tiny_settings.corpus_dir) / "long.txt").write_text(long + ".")
    small = tiny_settings.replace(chunk_size=40, chunk_overlap=0)
    report, calls = _build(small, fake_embedder, rebuild=True)
    index = open_index(small, load_vectors=True)
    alone = [c for c in calls if not any(c.endswith(ch.text) for ch in index.chunks)]
    assert alone and all(a.startswith("word") for a in alone)
    for (doc_id, s, e), vec in zip(index.sentences, index.sentence_vectors):
        assert _cosine(vec, fake_embedder._vec(index.documents[doc_id].text[s:e])) >= 0.9999
    assert _build(small, fake_embedder)[1] == []  # and nothing is embedded again


def test_reindex_tokenizes_only_new_chunks_for_bm25_and_scores_as_a_rebuild(tiny_settings, fake_embedder, monkeypatch):
    import rag.lexical as lexical

    _build(tiny_settings, fake_embedder)
    seen = []
    real = lexical.tokenize
    monkeypatch.setattr(lexical, "tokenize", lambda text: seen.append(text) or real(text))
    (Path(tiny_settings.corpus_dir) / "bees.txt").write_text("Drones are male bees. They do not sting.")
    _build(tiny_settings, fake_embedder)
    assert seen and all("Drones" in t for t in seen)  # the other documents' tokens were read back
    index = open_index(tiny_settings)
    question = "male bees sting colonies tea"
    incremental = index.lexical.scores(question)
    _build(tiny_settings, fake_embedder, rebuild=True)
    assert np.allclose(open_index(tiny_settings).lexical.scores(question), incremental)
    # a tokens file out of step with the chunks is not trusted: everything is tokenized again
    current = Path(tiny_settings.index_dir) / "current" / "bm25" / lexical.TOKENS
    assert lexical.saved_tokens(current.parent, ["k"] * 3) == {}


def test_an_index_from_before_pooled_sentence_vectors_is_upgraded_by_rag_index(tiny_settings, fake_embedder):
    """Serving it asks for `rag index`; `rag index` pools the sentence vectors and keeps the rest."""
    from rag.manifest import file_list as _file_list

    _build(tiny_settings, fake_embedder)
    version = (Path(tiny_settings.index_dir) / "current").resolve()
    rows = [json.loads(line) for line in (version / "sentences.jsonl").read_text().splitlines()]
    (version / "sentences.jsonl").write_text("".join(json.dumps(r[:3]) + "\n" for r in rows))  # the old layout
    manifest = json.loads((version / "manifest.json").read_text())
    del manifest["sentence_vectors"]
    manifest["files"] = {k: v for k, v in _file_list(version).items() if k != "manifest.json"}
    (version / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RagError, match=r"sentence_vectors None \(config: 'chunk-pass'\); run `rag index"):
        open_index(tiny_settings)
    report, calls = _build(tiny_settings, fake_embedder)
    assert report.unchanged and not report.changed_anything and len(calls) == len(open_index(tiny_settings).chunks)
    assert json.loads(((Path(tiny_settings.index_dir) / "current") / "manifest.json").read_text())["sentence_vectors"] == "chunk-pass"
    assert _build(tiny_settings, fake_embedder)[1] == []
