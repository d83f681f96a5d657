"""Shared fixtures. Fakes live here: a deterministic hashed bag-of-words embedder and a tiny corpus."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

try:  # torch before faiss in one process (two OpenMP runtimes otherwise)
    import torch  # noqa: F401
except ImportError:
    pass

ROOT = Path(__file__).resolve().parents[1]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test that used a `rag serve` subprocess shows what the server printed (it runs apart)."""
    report = (yield).get_result()
    if report.failed:
        from apiserver import Served

        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, Served):
                report.sections.append(("rag serve output", "".join(value.output[-200:])))


class FakeEmbedder:
    """Hashed bag of words: texts that share words get similar vectors, deterministically."""

    model_id = "fake"

    def __init__(self, dim: int = 256):
        self.dim = dim
        self.calls: list[str] = []

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype="float32")
        for w in re.findall(r"\w+", text.lower()):
            h = int(hashlib.md5(w.encode()).hexdigest(), 16)
            v[h % self.dim] += 1.0 if (h >> 64) & 1 else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_documents(self, texts):
        self.calls.extend(texts)
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), "float32")

    def embed_spans(self, texts, spans):
        """The text's vector, and each span's from its words (a bag of words has no context)."""
        span_vecs = [np.stack([self._vec(t[a:b]) for a, b in sp]) if sp else np.zeros((0, self.dim), "float32")
                     for t, sp in zip(texts, spans)]
        return self.embed_documents(texts), span_vecs

    def embed_query(self, text):
        return self._vec(text)


TINY = {
    "solar.md": "# Solar power\n\nSolar panels convert sunlight into electricity. Photovoltaic cells are made of silicon.\n\nThe largest solar farm is in the desert.",
    "bees.txt": "Honey bees live in colonies. A colony has one queen bee that lays eggs.\n\nWorker bees collect nectar from flowers and make honey.",
    "rome.html": "<html><head><title>Ancient Rome</title><style>.x{color:red}</style></head><body><h1>Ancient Rome</h1><p>Rome was founded in 753 BC according to legend.</p><script>var hidden = 'secret script text';</script><p>Julius Caesar crossed the Rubicon in 49 BC.</p></body></html>",
    "tea.txt": "---\ntitle: A Short History of Tea\nauthor: Test Author\n---\nTea originated in southwest China. It was drunk as a medicinal beverage.\n\nGreen tea and black tea come from the same plant, Camellia sinensis.",
}


@pytest.fixture
def fake_embedder():
    return FakeEmbedder()


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in TINY.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return corpus


@pytest.fixture
def tiny_settings(tmp_path, tiny_corpus):
    from rag.config import load_settings

    return load_settings(env={}, corpus_dir=tiny_corpus, index_dir=tmp_path / "index",
                         refusal_threshold="0.2")


@pytest.fixture
def tiny_rag(tiny_settings, fake_embedder):
    from rag.pipeline import Rag

    rag = Rag(tiny_settings, embedder=fake_embedder)
    rag.build(log=lambda *_: None)
    return rag


@pytest.fixture(scope="session")
def bundled_settings(tmp_path_factory):
    """Settings for a real-model index of the bundled corpus, built once per test session."""
    from rag.config import load_settings

    return load_settings(env={}, corpus_dir=ROOT / "corpus", index_dir=tmp_path_factory.mktemp("bundled") / "index",
                         prompts_dir=ROOT / "prompts")


@pytest.fixture(scope="session")
def bundled_rag(bundled_settings):
    from rag.pipeline import Rag

    rag = Rag(bundled_settings)
    rag.build(log=lambda *_: None)
    return rag


# ---- chat app (tests/test_ui_*.py): one real-model index of the bundled corpus and one launched app per session


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ui_rag(tmp_path_factory):
    """A Rag over a copy of the bundled corpus, indexed once with the packaged model."""
    import shutil

    from rag.config import load_settings
    from rag.pipeline import Rag

    root = tmp_path_factory.mktemp("ui")
    (root / "corpus").mkdir()
    shutil.copy(ROOT / "corpus" / "made-in-china-2025-explained.txt", root / "corpus")
    settings = load_settings(env={}, corpus_dir=root / "corpus", index_dir=root / "index", port=str(free_port()),
                             data_dir=root / "data")
    rag = Rag(settings)
    rag.build(log=lambda *_: None)
    return rag


@pytest.fixture(scope="session")
def ui_url(ui_rag):
    """The chat app launched in-process on a free loopback port; closed after the session."""
    from rag.ui import build_app, launch

    demo = build_app(ui_rag, reports_dir=ui_rag.settings.corpus_dir.parent / "reports")
    url = launch(demo, ui_rag.settings)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def api_server(ui_rag, tmp_path_factory):
    """`rag serve` (app + JSON API) in a subprocess over a copy of ui_rag's corpus and index, one per test
    module (uploads change the copy); uploads limited to 1 MB so the 413 case is cheap."""
    from apiserver import serve_copy

    served = serve_copy(ui_rag, tmp_path_factory.mktemp("api"), free_port(), args=["--upload-max-mb", "1"])
    yield served
    served.stop()


class FakeGenerator:
    """Scripted chat model: each `stream` call plays the next reply in small pieces.

    A reply is a string, a callable of the messages returning one, an exception to raise at
    once, or a list of pieces in which an exception is raised when reached (a mid-stream
    failure). The last reply repeats. `calls` records the messages of every call.
    """

    def __init__(self, *replies, piece: int = 5):
        self.replies = list(replies) or [""]
        self.piece = piece
        self.calls: list[list[dict]] = []

    def stream(self, messages):
        self.calls.append(messages)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if callable(reply) and not isinstance(reply, type):
            reply = reply(messages)
        if isinstance(reply, BaseException):
            raise reply
        pieces = reply if isinstance(reply, list) else [reply[i:i + self.piece] for i in range(0, len(reply), self.piece)]
        for p in pieces:
            if isinstance(p, BaseException):
                raise p
            yield p


@pytest.fixture
def fake_generator():
    return FakeGenerator


class MemoryStore:
    """A whole vector store in a dict of numpy rows, written against `rag.vectorstore.VectorStore`
    only: if the protocol missed something the pipeline needs, this store could not serve."""

    kind = "memory"
    label = "the in-memory store"
    keeps_vectors = False

    def __init__(self):
        self.rows: dict[int, np.ndarray] = {}
        self.fetches = 0  # calls of VectorIndex.vectors: one per search, not one per candidate

    def add(self, version, vectors, ids, doc_ids, log=print) -> dict:
        self.rows.update((int(i), np.array(v, dtype="float32")) for i, v in zip(ids, vectors))
        return {"type": "memory", "rows": len(self.rows)}

    def open(self, version, manifest, ids):
        return MemoryIndex(self, [int(i) for i in ids], int(manifest["dim"]))

    def prune(self, keep) -> None:
        keep = {int(i) for i in keep}
        self.rows = {i: v for i, v in self.rows.items() if i in keep}


class MemoryIndex:
    def __init__(self, store: MemoryStore, ids: list[int], dim: int):
        self.store, self.ids = store, ids
        self.count = sum(i in store.rows for i in ids)
        self.dim = next((len(store.rows[i]) for i in ids if i in store.rows), dim)

    def search(self, queries, k):
        queries = np.atleast_2d(np.asarray(queries, dtype="float32"))
        rows = [r for r, i in enumerate(self.ids) if i in self.store.rows]
        mat = np.stack([self.store.rows[self.ids[r]] for r in rows]) if rows else np.zeros((0, self.dim), "float32")
        scores = queries @ mat.T
        out_rows = np.full((len(queries), k), -1, dtype="int64")
        out_scores = np.full((len(queries), k), -np.inf, dtype="float32")
        for q in range(len(queries)):
            order = np.argsort(-scores[q], kind="stable")[:k]
            out_rows[q, :len(order)] = [rows[j] for j in order]
            out_scores[q, :len(order)] = scores[q, order]
        return out_rows, out_scores

    def vectors(self, rows):
        self.store.fetches += 1
        return np.stack([self.store.rows[self.ids[int(r)]] for r in rows]) if len(rows) else np.zeros((0, self.dim))


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """A real Milvus standalone server (the `milvus` package), started once per session in a temp
    dir; yields its `milvus://127.0.0.1:port` setting. It fails rather than skips when the server
    cannot start: CI runs these tests on the machine they were written on."""
    import time
    import urllib.request

    base = tmp_path_factory.mktemp("milvus-server")
    try:
        from milvus import MilvusServer
    except ImportError:
        pytest.fail("the milvus-server tests need the `milvus` package: pip install -r requirements.txt", pytrace=False)
    server = MilvusServer(wait_for_started=False)
    server.set_base_dir(str(base))

    def fail(why: str):
        log = base / "logs" / "milvus-stderr.log"
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        server.stop()
        pytest.fail(f"the Milvus server in {base} did not start: {why}\n{tail}", pytrace=False)

    try:
        server.start()
    except Exception as e:
        fail(f"{type(e).__name__}: {e}")
    health, deadline = f"http://127.0.0.1:{server.webservice_port}/healthz", time.monotonic() + 120
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    while True:
        if server.server_proc.poll() is not None:
            fail(f"the process exited with code {server.server_proc.returncode}")
        try:
            if b"OK" in opener.open(health, timeout=2).read():
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            fail("no healthy answer within 120 s")
        time.sleep(0.2)
    yield f"milvus://127.0.0.1:{server.listen_port}"
    server.stop()


# ---- a headless Chromium for the browser tests (Debian's package: browser downloads fail here)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing; run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


class Streams:
    """The app's event streams (gradio's /queue/data) open on one page, counted from its requests.

    gradio's JS client opens a stream for an event only when none is open. An event submitted in the
    few milliseconds while the previous stream closes (its join reply handled before the
    `close_stream` message) is left waiting on no stream, for ever. A browser test therefore
    acts only once the page is quiet: `settle()` before a click that starts an event."""

    QUIET = 0.25  # seconds with no stream open: the client's chained (.then) events have been sent

    def __init__(self, page):
        self.page, self.open, self.seen = page, 0, 0
        page.on("request", self._started)
        page.on("requestfinished", self._ended)
        page.on("requestfailed", self._ended)

    def _started(self, request):
        if "/queue/data" in request.url:
            self.open, self.seen = self.open + 1, self.seen + 1

    def _ended(self, request):
        if "/queue/data" in request.url:
            self.open -= 1

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the page's events have run (its load event at least) and no stream is open."""
        import time

        deadline, quiet_since = time.monotonic() + timeout, None
        while True:
            now = time.monotonic()
            quiet_since = (quiet_since or now) if self.seen and self.open <= 0 else None
            if quiet_since and now - quiet_since >= self.QUIET:
                return
            if now > deadline:
                pytest.fail(f"the app's events did not finish within {timeout:.0f} s "
                            f"({self.open} event stream(s) still open)")
            self.page.wait_for_timeout(50)


def open_app(page, url: str):
    """Open the chat app at `url` and wait until its question box shows and its load event has run; the
    page's Streams is `page.streams` (settle before a later click). Returns the page's response."""
    from playwright.sync_api import expect

    page.streams = Streams(page)
    response = page.goto(url)
    expect(page.locator("#question textarea")).to_be_visible(timeout=30_000)
    page.streams.settle()  # a click now starts its own event stream
    return response
