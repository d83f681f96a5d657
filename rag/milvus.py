"""Chunk vectors in a Milvus collection: Milvus Lite (a local .db file, in-process), a standalone
server or a distributed cluster, all through `pymilvus.MilvusClient`.

Rows are keyed by a stable id per chunk (`rag.vectorstore.row_ids`), so a build inserts only new
chunks and, after the new version is live, deletes the stale ones: a crash at any point leaves
the previous version's rows searchable.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import RagError, why
from .vectorstore import ID_SPACE


class MilvusStore:
    kind = "milvus"
    label = "the Milvus collection"
    keeps_vectors = False  # reading every vector back from a server is slow: vectors.npy is written
    BATCH = 2000  # rows per insert call
    PAGE = 16_384  # Milvus's largest query/search limit
    # A server's default (Bounded) read can miss rows written a moment before, so the build's reads
    # and the open check ask for Strong (it waits for the server's next time tick, 0.2-0.4 s each).
    # Searches then read Bounded (~3 ms): the open check has already seen every row they need.
    READ = {"consistency_level": "Strong"}

    def __init__(self, uri: str, collection: str):
        self.uri, self.collection = uri, collection
        self._client = None

    @property
    def client(self):
        if self._client is None:
            if self.uri.endswith(".db"):
                Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")  # Milvus Lite talks gRPC on loopback
            try:
                from pymilvus import MilvusClient
            except ImportError:
                raise RagError("vector_store milvus needs pymilvus; run `pip install pymilvus milvus-lite`") from None
            try:
                self._client = MilvusClient(self.uri, timeout=10)
            except Exception as e:
                hint = ("another process has it open (Milvus Lite allows one); stop it or use a Milvus server"
                        if self.uri.endswith(".db") else "check that the server runs and RAG_VECTOR_STORE")
                raise RagError(f"cannot open Milvus at {self.uri} ({why(e, 160)}); {hint}") from None
        return self._client

    def _ensure(self, dim: int) -> None:
        from pymilvus import DataType, MilvusClient

        c = self.client
        if c.has_collection(self.collection):
            have = _dim(c.describe_collection(self.collection))
            if have != dim:
                raise RagError(f"Milvus collection {self.collection!r} holds {have}-d vectors, this model makes "
                               f"{dim}-d; set RAG_MILVUS_COLLECTION to another name or drop that collection")
            return
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=4096)
        params = c.prepare_index_params()
        params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")  # exact, like FAISS's default
        c.create_collection(self.collection, schema=schema, index_params=params)

    def count(self) -> int:
        return int(self.client.query(self.collection, filter="", output_fields=["count(*)"],
                                     **self.READ)[0]["count(*)"])

    def present(self) -> set[int]:
        """Every id in the collection: plain queries over id ranges, halved while one fills a page
        (ids are uniform hashes). Milvus Lite cannot serve query_iterator's timestamps."""
        parts = max(1, self.count() // 4_000)
        step = -(-ID_SPACE // parts)
        todo = [(lo, min(lo + step, ID_SPACE)) for lo in range(0, ID_SPACE, step)]
        out: set[int] = set()
        while todo:
            lo, hi = todo.pop()
            rows = self.client.query(self.collection, filter=f"id >= {lo} and id < {hi}", output_fields=["id"],
                                     limit=self.PAGE, **self.READ)
            if len(rows) >= self.PAGE and hi - lo > 1:
                todo += [(lo, (lo + hi) // 2), ((lo + hi) // 2, hi)]
                continue
            out.update(int(r["id"]) for r in rows)
        return out

    def add(self, version: Path, vectors: np.ndarray, ids: np.ndarray, doc_ids: list[str], log=print) -> dict:
        try:
            self._ensure(int(vectors.shape[1]))
            have = self.present()
            todo = [i for i, pk in enumerate(ids) if int(pk) not in have]
            for s in range(0, len(todo), self.BATCH):
                self.client.insert(self.collection, [{"id": int(ids[i]), "vector": vectors[i].tolist(),
                                                      "doc_id": doc_ids[i]} for i in todo[s:s + self.BATCH]])
            self.client.flush(self.collection)  # searches of unflushed rows are ~20x slower on Milvus Lite
        except RagError:
            raise
        except Exception as e:
            raise RagError(f"writing to Milvus at {self.uri} failed ({why(e, 160)}); "
                           f"the previous index is unchanged") from None
        return {"type": "milvus", "collection": self.collection, "inserted": len(todo)}

    def prune(self, keep: np.ndarray) -> None:
        stale = sorted(self.present() - {int(x) for x in keep})
        for s in range(0, len(stale), 10_000):
            self.client.delete(self.collection, ids=stale[s:s + 10_000])
        if stale:
            self.client.flush(self.collection)

    def open(self, version: Path, manifest: dict, ids: np.ndarray) -> MilvusIndex:
        c = self.client
        try:
            if not c.has_collection(self.collection):
                raise RagError(f"Milvus at {self.uri} has no collection {self.collection!r} for {version.parent}/; "
                               f"run `rag index --rebuild`")
            if str(c.get_load_state(self.collection).get("state")) != "Loaded":  # loading again waits ~1 s
                c.load_collection(self.collection)
            return MilvusIndex(c, self.collection, ids, _dim(c.describe_collection(self.collection)), self.count())
        except RagError:
            raise
        except Exception as e:
            raise RagError(f"cannot read Milvus collection {self.collection!r} at {self.uri} ({why(e, 160)})") from None


class MilvusIndex:
    """One version's rows of the collection: ids map to the version's chunk rows."""

    def __init__(self, client, collection: str, ids: np.ndarray, dim: int, total: int):
        self.client, self.collection, self.dim, self.ids = client, collection, dim, ids
        self.row_of = {int(pk): row for row, pk in enumerate(ids)}
        # Fewer rows than chunks is damage (the open check reports it); more are rows of a newer or
        # unfinished build, which a search fetches past and skips.
        self.count = min(total, len(ids))
        self.extra = max(0, total - len(ids))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.atleast_2d(queries)
        limit = max(1, min(k + self.extra, MilvusStore.PAGE))
        res = self.client.search(self.collection, data=[np.asarray(v, dtype="float32").tolist() for v in queries],
                                 limit=limit, anns_field="vector", search_params={"metric_type": "IP"})
        scores = np.full((len(queries), k), -np.inf, dtype="float32")
        rows = np.full((len(queries), k), -1, dtype="int64")
        for qi, hits in enumerate(res):
            found = [(h["distance"], self.row_of[int(h["id"])]) for h in hits if int(h["id"]) in self.row_of][:k]
            for j, (score, row) in enumerate(found):
                scores[qi, j], rows[qi, j] = score, row
        return rows, scores

    def vectors(self, rows: Sequence[int]) -> np.ndarray | None:
        """All the rows' vectors in one `get`, however many candidates a search deduplicates."""
        rows = [int(r) for r in rows]
        if not rows:
            return np.zeros((0, self.dim), "float32")
        got = self.client.get(self.collection, ids=[int(self.ids[r]) for r in rows], output_fields=["vector"])
        by_id = {int(g["id"]): g["vector"] for g in got}
        missing = [r for r in rows if int(self.ids[r]) not in by_id]
        if missing:
            raise RagError(f"rows {missing[:3]} are not in Milvus collection {self.collection!r}; "
                           f"run `rag index --rebuild`")
        return np.asarray([by_id[int(self.ids[r])] for r in rows], dtype="float32")


def _dim(desc: dict) -> int:
    for f in desc.get("fields", []):
        if f.get("name") == "vector":
            return int((f.get("params") or {}).get("dim", 0))
    return 0
