"""Locking and hot swap: one writer at a time, the index is never mixed, and a serving Rag
moves to a new index atomically (queries in flight finish on the old one)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import TINY
from rag.errors import RagError
from rag.pipeline import Rag
from rag.store import open_index

ROOT = Path(__file__).parents[1]


@pytest.mark.real_model
def test_two_rag_index_runs_at_once_one_wins_the_other_says_so_in_one_line(tmp_path, tiny_corpus):
    from rag.config import load_settings
    from rag.load import load_corpus

    index_dir = tmp_path / "index"
    env = {**os.environ, "RAG_CORPUS_DIR": str(tiny_corpus), "RAG_INDEX_DIR": str(index_dir)}
    procs = [subprocess.Popen([sys.executable, "-m", "rag.cli", "index"], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 1], outs
    won, lost = outs[codes.index(0)], outs[codes.index(1)]
    assert "4 added" in won[0]
    assert lost[0] == ""
    assert lost[1] == f"error: another `rag index` is already updating {index_dir}/; wait for it to finish\n"
    # exactly what the winner built: every document once, every store in step
    index = open_index(load_settings(env={}, corpus_dir=tiny_corpus, index_dir=index_dir))
    assert {d["id"]: d["hash"] for d in index.manifest["documents"]} == \
        {d.id: d.hash for d in load_corpus(tiny_corpus)[0]}
    assert [n for n in os.listdir(index_dir) if n.startswith((".tmp-", ".current-"))] == []


def test_a_second_build_in_process_is_refused_while_one_runs(tiny_rag, tiny_settings, fake_embedder):
    """The same lock between threads of one app (an upload re-indexing while `rag index` runs)."""
    from rag.versions import locked

    started, release = threading.Event(), threading.Event()

    def hold():
        with locked(Path(tiny_settings.index_dir)):
            started.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    try:
        assert started.wait(10)
        with pytest.raises(RagError, match="already updating"):
            Rag(tiny_settings, embedder=fake_embedder).build(log=lambda *_: None)
    finally:
        release.set()
        t.join()
    assert Rag(tiny_settings, embedder=fake_embedder).build(log=lambda *_: None).changed_anything is False


class GatedEmbedder:
    """The fake embedder, but `embed_query` can be made to wait: a query held in flight."""

    def __init__(self, inner):
        self.inner, self.dim, self.model_id = inner, inner.dim, inner.model_id
        self.gate = None
        self.entered = threading.Event()

    def embed_documents(self, texts):
        return self.inner.embed_documents(texts)

    def embed_spans(self, texts, spans):
        return self.inner.embed_spans(texts, spans)

    def embed_query(self, text):
        if self.gate is not None:
            self.entered.set()
            assert self.gate.wait(30)
        return self.inner.embed_query(text)


def verified(answer, index) -> bool:
    return all(index.documents[c.doc_id].text[c.start:c.end] == c.quote for c in answer.citations)


def test_queries_in_flight_finish_on_the_old_index_new_ones_use_the_new(tiny_settings, fake_embedder):
    serving = GatedEmbedder(fake_embedder)
    rag = Rag(tiny_settings, embedder=serving)
    rag.build(log=lambda *_: None)
    old = rag.index
    serving.gate = threading.Event()
    result = {}
    t = threading.Thread(target=lambda: result.update(answer=rag.ask("Who lays eggs in a bee colony?")))
    t.start()
    assert serving.entered.wait(10)  # the query has taken the index and is waiting inside the model

    (Path(tiny_settings.corpus_dir) / "owls.txt").write_text("Barn owls have heart-shaped faces. Owls hunt mice at night.")
    Rag(tiny_settings, embedder=fake_embedder).build(log=lambda *_: None)  # `rag index`, swapping and sweeping
    assert not old.path.exists(), "the old version was swept while the query was in flight"

    serving.gate.set()
    t.join(30)
    answer = result["answer"]
    assert "queen" in answer.text and verified(answer, old)
    assert all(h.chunk.doc_id in old.documents for h in answer.hits)

    serving.gate = None
    assert rag.search("barn owls heart-shaped faces", k=1)[0].chunk.doc_id == "owls.txt"
    assert rag.index.path != old.path and "owls.txt" in rag.index.documents


def test_queries_keep_answering_through_repeated_rebuilds(tiny_settings, fake_embedder):
    rag = Rag(tiny_settings, embedder=fake_embedder)
    rag.build(log=lambda *_: None)
    stop, errors, answered = threading.Event(), [], []

    def serve():
        while not stop.is_set():
            try:
                index = rag.index
                answer = rag.ask("Who lays eggs in a bee colony?")
                assert "queen" in answer.text and answer.citations
                answered.append(index.path.name)
            except Exception as e:  # noqa: BLE001 - any failure while swapping is the bug
                errors.append(repr(e))

    threads = [threading.Thread(target=serve) for _ in range(4)]
    for t in threads:
        t.start()
    corpus = Path(tiny_settings.corpus_dir)
    try:
        for n in range(6):
            (corpus / f"extra-{n}.txt").write_text(f"Extra note {n}: kestrels hover over fields number {n}.")
            Rag(tiny_settings, embedder=fake_embedder).build(log=lambda *_: None)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == []
    assert len(set(answered)) >= 2, "the serving threads should have seen more than one version"
    assert set(rag.index.documents) == set(TINY) | {f"extra-{n}.txt" for n in range(6)}


def test_opening_while_a_build_swaps_and_sweeps_reads_one_whole_version(tiny_rag, tiny_settings, fake_embedder,
                                                                       monkeypatch):
    """The moment a request reloads is the moment a build may swap `current` and delete the
    version being read: the reader must come out with one whole version, never a mix or an error."""
    import rag.vectorstore as store

    (Path(tiny_settings.corpus_dir) / "owls.txt").write_text("Barn owls have heart-shaped faces.")
    real_read = store.read_faiss
    calls = []

    def read_during_a_build(path):
        if not calls:
            calls.append(path)
            Rag(tiny_settings, embedder=fake_embedder).build(log=lambda *_: None)  # swaps and sweeps
        return real_read(path)

    monkeypatch.setattr(store, "read_faiss", read_during_a_build)
    index = open_index(tiny_settings)
    assert calls and "owls.txt" in index.documents  # the new version, read whole
    assert len(index.chunks) == index.searcher.count == index.manifest["count"]
