"""One contract, four vector stores: FAISS files (default), Milvus Lite (in-process), a real Milvus
standalone server (started once per session, tests/conftest.py) and a tiny in-memory store written
against the protocol alone (tests/conftest.py). Everything a user sees must be the same whichever
store is in use."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import MemoryStore
from rag.cite import verify
from rag.errors import RagError
from rag.pipeline import Rag
from rag.store import open_index
from rag.config import parse_vector_store as parse

BACKENDS = ["faiss", "milvus", "memory", "milvus-server"]
MILVUS = ["milvus", "milvus-server"]
_collections = itertools.count()


def _with_store(kind: str, settings, tmp_path: Path, request):
    """The settings with this backend's store; a server test gets its own collection (one server is shared)."""
    if kind == "milvus":
        return settings.replace(vector_store=f"milvus://{tmp_path}/milvus.db")
    if kind == "milvus-server":
        return settings.replace(vector_store=request.getfixturevalue("milvus_server"),
                                milvus_collection=f"rag_test_{next(_collections)}")
    return settings.replace(vector_store="faiss")


@dataclass
class Backend:
    kind: str
    settings: object
    store: object = None  # an injected rag.vectorstore.VectorStore (the in-memory one); None: from settings

    @property
    def store_kind(self) -> str:
        """What the manifest records: Milvus Lite and a server are both "milvus"."""
        return "milvus" if self.kind in MILVUS else self.kind

    def rag(self, embedder, **changes):
        return Rag(self.settings.replace(**changes) if changes else self.settings, embedder=embedder, store=self.store)

    def build(self, embedder):
        embedder.calls.clear()
        return self.rag(embedder).build(log=lambda *_: None)

    def open(self, **changes):
        return open_index(self.settings.replace(**changes) if changes else self.settings, store=self.store)


def _release(kind: str, settings) -> None:
    """Milvus Lite keeps a server per file until released; a server test drops its collection."""
    if kind == "milvus":
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(parse(settings.vector_store)[1])
    elif kind == "milvus-server":
        from rag.store import vector_store

        store = vector_store(settings)
        store.client.drop_collection(store.collection)
        store.client.close()


@pytest.fixture(params=BACKENDS)
def backend(request, tiny_settings, tmp_path):
    pytest.importorskip("pymilvus") if request.param in MILVUS else None
    b = Backend(request.param, _with_store(request.param, tiny_settings, tmp_path, request),
                MemoryStore() if request.param == "memory" else None)
    yield b
    _release(b.kind, b.settings)


def _build(s, emb):
    emb.calls.clear()
    return Rag(s, embedder=emb).build(log=lambda *_: None)


def test_add_search_and_exact_citations(backend, fake_embedder):
    backend.build(fake_embedder)
    rag = backend.rag(fake_embedder)
    hits = rag.search("queen bee lays eggs", k=3)
    assert hits[0].chunk.doc_id == "bees.txt" and hits[0].dense is not None
    answer = rag.ask("Which bee lays eggs?")
    assert answer.citations and all(verify(rag.index, c) for c in answer.citations)
    assert backend.open().manifest["vector_store"] == backend.store_kind


def test_update_and_delete_are_incremental(backend, fake_embedder):
    corpus = Path(backend.settings.corpus_dir)
    backend.build(fake_embedder)
    (corpus / "owls.txt").write_text("Owls hunt mice at night. Barn owls have heart-shaped faces.")
    (corpus / "bees.txt").write_text("Honey bees live in colonies. Drones are male bees that do not sting.")
    (corpus / "rome.html").unlink()
    report = backend.build(fake_embedder)
    assert report.added == ["owls.txt"] and report.changed == ["bees.txt"] and report.deleted == ["rome.html"]
    assert all("Solar" not in c and "Tea" not in c for c in fake_embedder.calls)  # unchanged: not re-embedded
    rag = backend.rag(fake_embedder)
    assert rag.search("barn owls heart-shaped faces", k=1, mode="dense")[0].chunk.doc_id == "owls.txt"
    assert all(h.chunk.doc_id != "rome.html" for h in rag.search("Rubicon Caesar", k=5, mode="dense"))
    drones = rag.search("male drones do not sting", k=1, mode="dense")[0]
    assert drones.chunk.doc_id == "bees.txt" and "Drones" in drones.chunk.text
    index = rag.index
    assert index.searcher.count == len(index.chunks) == index.manifest["count"]
    if backend.store_kind == "milvus":  # stale rows are deleted once the new version is live
        from rag.store import vector_store

        assert len(vector_store(backend.settings).present()) == len(index.chunks)
    if backend.kind == "memory":
        assert len(backend.store.rows) == len(index.chunks)


def test_a_search_fetches_candidate_vectors_in_one_call_not_one_per_candidate(backend, fake_embedder):
    backend.build(fake_embedder)
    index = backend.rag(fake_embedder).index
    calls = []
    real = index.searcher.vectors
    index.searcher.vectors = lambda rows: calls.append(list(rows)) or real(rows)
    hits = backend.rag(fake_embedder).retrieve(index, "honey bees queen eggs colony", k=3, mode="dense")
    assert hits and len(calls) == 1 and len(calls[0]) >= len(hits)


def test_all_backends_give_the_same_scores(tiny_settings, fake_embedder, tmp_path, request):
    pytest.importorskip("pymilvus")
    scored = {}
    for kind in BACKENDS:
        b = Backend(kind, _with_store(kind, tiny_settings.replace(index_dir=tmp_path / f"index-{kind}"), tmp_path,
                                      request), MemoryStore() if kind == "memory" else None)
        b.build(fake_embedder)
        rag = b.rag(fake_embedder)
        n = len(rag.index.chunks)
        scored[kind] = [{(h.chunk.doc_id, h.chunk.start): round(h.score, 5)  # every chunk: ties in any order
                         for h in rag.search(q, k=n, mode="dense")}
                        for q in ("solar panels silicon", "green tea plant", "Julius Caesar")]
        assert rag.search("Julius Caesar Rubicon", k=1)[0].chunk.doc_id == "rome.html"
        _release(kind, b.settings)
    assert scored["faiss"] == scored["milvus"] == scored["memory"] == scored["milvus-server"]


def test_model_or_store_mismatch_is_one_line_with_the_fix(backend, fake_embedder, tmp_path):
    backend.build(fake_embedder)
    other_store = "milvus://" + str(tmp_path / "other.db") if backend.store_kind != "milvus" else "faiss"
    for change, word in (({"model": "/some/other-model"}, "model"), ({"vector_store": other_store}, "vector_store")):
        with pytest.raises(RagError) as e:
            open_index(backend.settings.replace(**change), store=backend.store if "model" in change else None)
        assert word in str(e.value) and "rag index --rebuild" in str(e.value) and "\n" not in str(e.value)


def test_vectors_changed_behind_the_index_are_caught(backend, fake_embedder):
    backend.build(fake_embedder)
    index = backend.open()
    if backend.kind == "faiss":
        import faiss

        other = faiss.IndexFlatIP(index.searcher.dim)
        other.add(fake_embedder.embed_documents([f"noise {i}" for i in range(index.searcher.count)]))
        faiss.write_index(other, str(index.path / "vectors.faiss"))  # same size, other vectors
    elif backend.store_kind == "milvus":  # rows replaced by other vectors under the same ids
        from rag.store import vector_store

        store = vector_store(backend.settings)
        ids = [int(i) for i in index.searcher.ids]
        store.client.upsert(store.collection, [{"id": i, "vector": fake_embedder.embed_query(f"noise {i}").tolist(),
                                                "doc_id": "x"} for i in ids])
    else:
        for i in list(backend.store.rows):
            backend.store.rows[i] = fake_embedder.embed_query(f"noise {i}")
    with pytest.raises(RagError) as e:
        backend.open()
    assert "rag index --rebuild" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("kind", MILVUS)
def test_milvus_collection_of_another_dimension_is_refused(kind, tiny_settings, fake_embedder, tmp_path, request):
    pytest.importorskip("pymilvus")
    from tests.conftest import FakeEmbedder

    s = _with_store(kind, tiny_settings, tmp_path, request)
    _build(s, FakeEmbedder(dim=128))
    with pytest.raises(RagError, match="holds 128-d vectors"):
        Rag(s.replace(index_dir=tmp_path / "index2"), embedder=fake_embedder).build(log=lambda *_: None)
    assert Rag(s, embedder=FakeEmbedder(dim=128)).search("honey bees", k=1)  # the first index still works


def test_unreachable_milvus_server_is_one_line(tiny_settings, fake_embedder):
    pytest.importorskip("pymilvus")
    s = tiny_settings.replace(vector_store="milvus://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(RagError) as e:
        Rag(s, embedder=fake_embedder).build(log=lambda *_: None)
    assert "cannot open Milvus at http://127.0.0.1:9" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("kind", MILVUS)
def test_switching_the_store_moves_vectors_without_embedding_again(kind, tiny_settings, fake_embedder, tmp_path,
                                                                   request):
    pytest.importorskip("pymilvus")
    _build(tiny_settings, fake_embedder)
    milvus = _with_store(kind, tiny_settings, tmp_path, request)
    for s in (milvus, tiny_settings):
        report = _build(s, fake_embedder)
        assert report.embedded == 0 and fake_embedder.calls == []
        assert Rag(s, embedder=fake_embedder).search("queen bee lays eggs", k=1, mode="dense")[0].chunk.doc_id == "bees.txt"


def test_the_setting_names_the_backend_or_says_what_to_write(tmp_path):
    from rag.config import load_settings

    assert parse("faiss") == ("faiss", "")
    assert parse("milvus://milvus.example:19530") == ("milvus", "http://milvus.example:19530")
    assert parse("milvus://https://zilliz.example:443") == ("milvus", "https://zilliz.example:443")
    kind, uri = parse("milvus://index/m.db")
    assert kind == "milvus" and Path(uri).is_absolute() and uri.endswith("index/m.db")
    for bad in ("qdrant://x", "milvus://"):
        with pytest.raises(RagError) as e:
            load_settings(env={"RAG_VECTOR_STORE": bad})
        assert "milvus://" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(RagError, match="not a valid Milvus name"):
        load_settings(env={"RAG_MILVUS_COLLECTION": "my-chunks"})
