"""Where chunk vectors are searched: FAISS files inside each index version (the embedded
default) or a Milvus collection (Milvus Lite file, standalone or distributed cluster), picked
by one setting, RAG_VECTOR_STORE:

    faiss                            vectors.faiss in index/current/ (default)
    milvus://index/milvus.db         Milvus Lite: in-process, a local path ending in .db
    milvus://milvus.example:19530    a Milvus standalone or cluster (http:// is implied)

Both give the searcher `rag.retrieve` uses: `.search(q[1, dim], k) -> (scores, rows)` with
rows into the version's chunk list (-1 padding), `.reconstruct(row)`, `.ntotal` and `.d`.
Milvus rows are keyed by a stable id per chunk (document, span, embedded-text hash), so a
build inserts only new chunks and, after the new version is live, deletes the stale ones:
a crash at any point leaves the previous version's rows searchable.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import RagError
from .types import content_hash

ID_SPACE = 1 << 60  # ids are the first 60 bits of a chunk row's hash: positive int64


def parse(setting: str) -> tuple[str, str]:
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


def open_store(settings):
    kind, uri = parse(settings.vector_store)
    if kind == "faiss":
        return FaissStore(settings.flat_threshold)
    return MilvusStore(uri, settings.milvus_collection)


def row_ids(chunk_rows) -> np.ndarray:
    """A stable id per (doc_id, start, end, embedded-text key) chunk row."""
    return np.fromiter((int(content_hash(d, str(s), str(e), k)[:15], 16) for d, s, e, k in chunk_rows),
                       dtype="int64", count=len(chunk_rows))


class FaissStore:
    kind = "faiss"

    def __init__(self, flat_threshold: int):
        self.flat_threshold = flat_threshold

    def write(self, version: Path, vectors: np.ndarray, ids: np.ndarray, doc_ids: list[str], log=print) -> dict:
        from .index import write_faiss

        _, info = write_faiss(vectors, version / "vectors.faiss", self.flat_threshold, log)
        return info

    def open(self, version: Path, manifest: dict, ids: np.ndarray):
        from .store import read_faiss

        return read_faiss(version / "vectors.faiss")

    def prune(self, keep: np.ndarray) -> None:
        """Old versions are whole directories, swept by the build."""


class MilvusStore:
    kind = "milvus"
    BATCH = 2000  # rows per insert call
    PAGE = 16_384  # Milvus's largest query/search limit

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
                raise RagError(f"cannot open Milvus at {self.uri} ({_why(e)}); {hint}") from None
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
        return int(self.client.query(self.collection, filter="", output_fields=["count(*)"])[0]["count(*)"])

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
                                     limit=self.PAGE)
            if len(rows) >= self.PAGE and hi - lo > 1:
                todo += [(lo, (lo + hi) // 2), ((lo + hi) // 2, hi)]
                continue
            out.update(int(r["id"]) for r in rows)
        return out

    def write(self, version: Path, vectors: np.ndarray, ids: np.ndarray, doc_ids: list[str], log=print) -> dict:
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
            raise RagError(f"writing to Milvus at {self.uri} failed ({_why(e)}); the previous index is unchanged") from None
        return {"type": "milvus", "collection": self.collection, "inserted": len(todo)}

    def prune(self, keep: np.ndarray) -> None:
        """Delete the rows no version needs any more; called once the new version is live."""
        stale = sorted(self.present() - {int(x) for x in keep})
        for s in range(0, len(stale), 10_000):
            self.client.delete(self.collection, ids=stale[s:s + 10_000])
        if stale:
            self.client.flush(self.collection)

    def open(self, version: Path, manifest: dict, ids: np.ndarray):
        c = self.client
        try:
            if not c.has_collection(self.collection):
                raise RagError(f"Milvus at {self.uri} has no collection {self.collection!r} for {version.parent}/; "
                               f"run `rag index --rebuild`")
            c.load_collection(self.collection)
            return MilvusSearcher(c, self.collection, ids, _dim(c.describe_collection(self.collection)), self.count())
        except RagError:
            raise
        except Exception as e:
            raise RagError(f"cannot read Milvus collection {self.collection!r} at {self.uri} ({_why(e)})") from None


class MilvusSearcher:
    """The FAISS-like view `rag.retrieve` and `rag.store` use, over one collection."""

    def __init__(self, client, collection: str, ids: np.ndarray, dim: int, total: int):
        self.client, self.collection, self.d, self.ids = client, collection, dim, ids
        self.row_of = {int(pk): row for row, pk in enumerate(ids)}
        # Fewer rows than chunks is damage (the open check reports it); more are rows of a newer or
        # unfinished build, which a search fetches past and skips.
        self.ntotal = min(total, len(ids))
        self.extra = max(0, total - len(ids))

    def search(self, q: np.ndarray, k: int):
        limit = max(1, min(k + self.extra, MilvusStore.PAGE))
        res = self.client.search(self.collection, data=[np.asarray(v, dtype="float32").tolist() for v in q],
                                 limit=limit, anns_field="vector", search_params={"metric_type": "IP"})
        scores = np.full((len(q), k), -np.inf, dtype="float32")
        rows = np.full((len(q), k), -1, dtype="int64")
        for qi, hits in enumerate(res):
            found = [(h["distance"], self.row_of[int(h["id"])]) for h in hits if int(h["id"]) in self.row_of][:k]
            for j, (score, row) in enumerate(found):
                scores[qi, j], rows[qi, j] = score, row
        return scores, rows

    def reconstruct(self, row: int) -> np.ndarray:
        got = self.client.get(self.collection, ids=[int(self.ids[row])], output_fields=["vector"])
        if not got:
            raise RuntimeError(f"row {row} is not in Milvus collection {self.collection!r}")
        return np.asarray(got[0]["vector"], dtype="float32")


def _dim(desc: dict) -> int:
    for f in desc.get("fields", []):
        if f.get("name") == "vector":
            return int((f.get("params") or {}).get("dim", 0))
    return 0


def _why(e: Exception) -> str:
    text = str(e).splitlines()[0][:160] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
