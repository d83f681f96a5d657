import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
RAG = [sys.executable, "-m", "rag.cli"]


def run(args, env_extra=None, timeout=120):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(RAG + args, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def test_import_rag_does_not_import_torch_or_faiss():
    code = "import sys, rag, rag.cli, rag.config; print(sorted(m for m in ('torch','faiss','gradio','sentence_transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_answers_fast():
    run(["--help"])  # warm the file cache
    t = time.perf_counter()
    out = run(["--help"])
    assert out.returncode == 0 and "index" in out.stdout and "ask" in out.stdout
    assert time.perf_counter() - t < 1.0


def test_bad_input_is_one_line_without_traceback(tmp_path):
    out = run(["search", "anything", "--index-dir", str(tmp_path / "none")])
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip() == f"error: no index in {tmp_path / 'none'}/; run `rag index` first"
    out = run(["search", "x", "--top-k", "lots"])
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "--top-k='lots'" in out.stderr


@pytest.mark.real_model
def test_index_search_ask_end_to_end(tmp_path):
    env = {"RAG_INDEX_DIR": str(tmp_path / "index")}
    out = run(["index"], env)
    assert out.returncode == 0, out.stderr
    assert "1 added" in out.stdout
    again = run(["index"], env)
    assert "nothing embedded" in again.stdout

    q = "What has Made in China 2025 aimed to transform China into at its core?"
    out = run(["search", q, "--json"], env)
    hits = json.loads(out.stdout)["hits"]
    assert "“manufacturing superpower.”" in hits[0]["text"] and hits[0]["doc_id"] == "made-in-china-2025-explained.txt"
    text = (ROOT / "corpus" / "made-in-china-2025-explained.txt").read_text().split("---\n", 2)[2]
    assert all(text[h["start"]:h["end"]] == h["text"] for h in hits)

    out = run(["search", q], env)
    first = out.stdout.splitlines()[0]
    assert first.startswith("1. score ") and "Made in China 2025, Explained" in first and "chars" in first

    out = run(["ask", q, "--json"], env)
    ans = json.loads(out.stdout)
    assert "manufacturing superpower" in ans["answer"] and not ans["refused"]
    assert ans["citations"] and all(text[c["start"]:c["end"]] == c["quote"] for c in ans["citations"])
    out = run(["ask", q], env)
    assert "[1]" in out.stdout and "Sources:" in out.stdout


def test_counts_and_quotes_read_naturally():
    from rag.cli_render import quoted
    from rag.ui_render import counted

    assert counted(1, "document") == "1 document" and counted(2, "document") == "2 documents"
    assert quoted("At its core, it aims at a \u201cmanufacturing superpower.\u201d") == \
        "\u201cAt its core, it aims at a \u201cmanufacturing superpower.\u201d"
    assert quoted("\u201cSelf-sufficiency\u201d is the aim.") == "\u201cSelf-sufficiency\u201d is the aim.\u201d"
    assert quoted("plain") == "\u201cplain\u201d"


def test_warm_up_loads_everything_the_first_question_needs(tiny_rag):
    import rag.entities as entities

    tiny_rag.warm_up()
    assert entities._nlp is not None and tiny_rag._index is not None
    assert tiny_rag.embedder.calls[-1:] == [tiny_rag.index.chunks[0].text]  # the document model was run once
