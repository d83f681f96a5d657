"""Ray-distributed embedding writes the same index as the single-process build."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag.pipeline import Rag
from tests.realmodel import real_embedder

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def ray_cluster():
    import os

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray = pytest.importorskip("ray")
    from rag.distributed import connect

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # a local two-CPU cluster
    yield connect("local")  # joins the running cluster
    ray.shutdown()


def _version(index_dir: Path) -> Path:
    return (index_dir / "current").resolve()


def test_ray_embedding_gives_the_same_vectors_and_index(ray_cluster, tiny_settings, monkeypatch):
    import rag.distributed as dist

    monkeypatch.setattr(dist.RayEmbedder.__init__, "__defaults__", (None, 2))  # many small blocks: both actors work
    emb = real_embedder()
    small = tiny_settings.replace(chunk_size=24, chunk_overlap=4)  # more chunks than one block
    single = small.replace(index_dir=Path(tiny_settings.index_dir).parent / "index-single")
    on_ray = small.replace(index_dir=Path(tiny_settings.index_dir).parent / "index-ray", ray_address="local")
    Rag(single, embedder=emb).build(log=lambda *_: None)
    report = Rag(on_ray, embedder=emb).build(log=lambda *_: None)
    assert report.embedded > 4  # more texts than one block; sentence vectors come back from the actors too

    a, b = _version(Path(single.index_dir)), _version(Path(on_ray.index_dir))
    for name in ("documents.jsonl", "chunks.jsonl", "sentences.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    from rag.store import load_sentence_vectors
    from rag.vectorstore import stored_vectors

    for name, load in (("chunk vectors", stored_vectors), ("sentence vectors", load_sentence_vectors)):
        va, vb = np.asarray(load(a)), np.asarray(load(b))
        assert va.shape == vb.shape and len(va)
        assert float(np.min(np.sum(va * vb, axis=1))) >= 0.9999, name  # unit vectors: cosine per row
    ma, mb = (json.loads((v / "manifest.json").read_text()) for v in (a, b))
    strip = lambda m: [{k: v for k, v in d.items() if k != "indexed_at"} for d in m["documents"]]  # noqa: E731
    assert strip(ma) == strip(mb) and ma["count"] == mb["count"] and ma["sentences"] == mb["sentences"]
    q = "Which bee lays the eggs?"
    assert [h.chunk.start for h in Rag(single, embedder=emb).search(q)] == \
           [h.chunk.start for h in Rag(on_ray, embedder=emb).search(q)]
