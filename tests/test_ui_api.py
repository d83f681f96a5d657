"""The launched chat app answered through gradio_client, as any API user would call it."""

import re

import pytest

pytestmark = pytest.mark.real_model

QUESTION = "What has Made in China 2025 aimed to transform China into at its core?"


@pytest.fixture
def client(ui_url):
    from gradio_client import Client

    return Client(ui_url, verbose=False)


def ask(client, question, k=5, mode="hybrid", backend="extractive"):
    chat, sources, answer, box = client.predict(question, k, mode, backend, api_name="/ask")
    return chat, sources, answer, box


def test_answer_and_citations(client, ui_rag):
    chat, sources, answer, box = ask(client, QUESTION)
    assert box == ""  # the question box is cleared for the next question
    assert not answer["refused"]
    assert "manufacturing superpower" in answer["answer"]
    doc = ui_rag.index.documents["made-in-china-2025-explained.txt"]
    assert answer["citations"], "an answer must cite its sources"
    for c in answer["citations"]:
        assert doc.text[c["start"]:c["end"]] == c["quote"]  # every quote is an exact span
        assert f"[{c['n']}]" in answer["answer"]
        # the [n] marker in the chat is a link that opens that exact span
        assert re.search(rf'<a class="cite"[^>]*data-start="{c["start"]}" data-end="{c["end"]}" data-n="{c["n"]}"',
                         chat)
        assert f'<mark class="span">{c["quote"][:40]}' in sources.replace("&#x27;", "'")
    cited = [c for c in answer["citations"] if "manufacturing superpower" in c["quote"]]
    assert cited and "Made in China 2025, Explained" in sources


def test_follow_up_uses_the_conversation_and_clear_forgets_it(client):
    ask(client, QUESTION)
    follow = "When was it launched?"
    _, _, answer, _ = ask(client, follow)
    # the extractive backend folds the previous question into the follow-up it retrieves with
    assert "Made in China 2025" in answer["standalone_question"]
    client.predict(api_name="/clear")
    chat, _, answer, _ = ask(client, follow)
    assert answer["standalone_question"] == follow
    assert QUESTION.replace("'", "&#x27;") not in chat  # the cleared turn is gone from the chat


def test_not_in_corpus_still_lists_closest_passages(client):
    chat, sources, answer, _ = ask(client, "What is the boiling point of mercury on Mars?")
    assert answer["refused"] and not answer["citations"]
    assert "Not in the corpus" in chat
    assert "Closest passages" in sources and sources.count('class="src"') == len(answer["passages"]) > 0


def test_empty_question_is_a_message_not_a_traceback(client):
    chat, _, answer, _ = ask(client, "   ")
    assert answer is None
    assert "the question is empty; type a question" in chat
    assert "Traceback" not in chat


def test_settings_reach_retrieval(client):
    _, _, answer, _ = ask(client, QUESTION, k=2, mode="bm25")
    assert len(answer["passages"]) == 2
    assert all(p["dense"] is None for p in answer["passages"])  # bm25 mode computes no dense score


def test_rag_serve_with_login(ui_rag, tmp_path):
    """`rag serve` itself, as a user starts it: loopback, and gradio auth from RAG_AUTH_*."""
    import os
    import subprocess
    import sys
    import threading
    import urllib.error
    import urllib.request

    from conftest import free_port
    from gradio_client import Client

    s, port = ui_rag.settings, free_port()
    env = dict(os.environ, RAG_AUTH_USER="ann", RAG_AUTH_PASSWORD="s3cret", GRADIO_ANALYTICS_ENABLED="False")
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--corpus-dir", str(s.corpus_dir), "--index-dir",
           str(s.index_dir), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(180, proc.kill)  # a hung start fails the test instead of hanging CI
    watchdog.start()
    try:
        seen = []
        for line in proc.stdout:  # "Serving ..." is printed once the server is up (model and index loaded)
            seen.append(line)
            if line.startswith("Serving"):
                break
        assert seen and seen[-1].startswith(f"Serving http://127.0.0.1:{port}/"), "".join(seen)
        assert "this machine only" in seen[-1] and "login required" in seen[-1]
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(url + "config", timeout=10)
        assert denied.value.code == 401
        with pytest.raises(Exception):
            Client(url, auth=("ann", "wrong"), verbose=False)
        client = Client(url, auth=("ann", "s3cret"), verbose=False)
        _, _, answer, _ = client.predict(QUESTION, 5, "hybrid", "extractive", api_name="/ask")
        assert "manufacturing superpower" in answer["answer"]
    finally:
        watchdog.cancel()
        proc.terminate()
        proc.wait(timeout=20)


def test_upload_then_ask_at_once(ui_rag, tmp_path):
    """Upload through the app (its own copy of the index), then ask about the new document."""
    import shutil

    from conftest import free_port
    from gradio_client import Client, handle_file

    from rag.pipeline import Rag
    from rag.ui import build_app, launch

    shutil.copytree(ui_rag.settings.corpus_dir, tmp_path / "corpus")
    shutil.copytree(ui_rag.settings.index_dir, tmp_path / "index", symlinks=True)
    settings = ui_rag.settings.replace(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index",
                                      port=free_port())
    rag = Rag(settings, embedder=ui_rag.embedder)
    demo = build_app(rag, reports_dir=tmp_path / "reports")
    try:
        client = Client(launch(demo, settings), verbose=False)
        upload = tmp_path / "in" / "Etna notes.md"
        upload.parent.mkdir()
        upload.write_text("# Mount Etna\n\nMount Etna is an active stratovolcano on the east coast of Sicily. "
                          "Its summit is about 3,357 metres high, and it erupts several times a year.\n")
        status, corpus = client.predict(handle_file(str(upload)), api_name="/upload")
        assert "Added Etna notes.md" in status and "Etna notes.md" in corpus and "2 documents" in corpus
        assert (tmp_path / "corpus" / "Etna notes.md").read_text() == upload.read_text()
        _, sources, answer, _ = client.predict("How high is the summit of Mount Etna?", 5, "hybrid", "extractive",
                                               api_name="/ask")
        assert not answer["refused"] and "3,357 metres" in answer["answer"]
        assert answer["citations"][0]["doc_id"] == "Etna notes.md" and "Mount Etna" in sources
        bad = tmp_path / "in" / "script.sh"
        bad.write_text("echo hi")
        with pytest.raises(Exception, match="Invalid file type"):  # gradio refuses it before our own check
            client.predict(handle_file(str(bad)), api_name="/upload")
        assert not (tmp_path / "corpus" / "script.sh").exists()
    finally:
        demo.close()


def test_feedback_endpoint_rates_the_latest_stored_answer(client, ui_rag):
    from rag.chats import ChatStore

    ask(client, QUESTION)
    status, comment = client.predict(-1, "cite the first sentence", api_name="/feedback")
    assert "\U0001f44e recorded for the latest answer" in status and comment == ""
    fb = ChatStore.for_settings(ui_rag.settings).feedback()[-1]
    assert fb["question"] == QUESTION and fb["rating"] == -1 and fb["comment"] == "cite the first sentence"
    assert fb["answer"]["citations"] and fb["model"] == ui_rag.settings.model
