"""Contract tests of the JSON API with httpx against a real `rag serve` on loopback (app and API in one server)."""

from __future__ import annotations

import json
import re

import httpx
import pytest

pytestmark = pytest.mark.real_model

QUESTION = "What has Made in China 2025 aimed to transform China into at its core?"
DOC = "made-in-china-2025-explained.txt"
ETNA = ("# Mount Etna\n\nMount Etna is an active stratovolcano on the east coast of Sicily. "
        "Its summit is about 3,357 metres high, and it erupts several times a year.\n")


@pytest.fixture(scope="module")
def api(api_server):
    with httpx.Client(base_url=api_server.url, timeout=60) as client:
        yield client


def error_of(response: httpx.Response, status: int) -> str:
    """The one-line error of a JSON error response with this status (never a traceback)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


def test_health_and_collections(api):
    health = api.get("/api/v1/health").json()
    assert health == {"status": "ok", "model": "all-MiniLM-L6-v2", "documents": 1, "chunks": health["chunks"],
                      "detail": ""} and health["chunks"] > 10
    assert api.get("/api/v1/collections").json() == [{"name": "default", "documents": 1, "chunks": health["chunks"]}]


def test_search_returns_k_exact_passages(api, ui_rag):
    body = api.post("/api/v1/search", json={"question": QUESTION, "k": 3, "mode": "bm25"}).json()
    assert body["mode"] == "bm25" and body["collections"] == ["default"] and len(body["passages"]) == 3
    doc = ui_rag.index.documents[DOC]
    for p in body["passages"]:
        assert doc.text[p["start"]:p["end"]] == p["text"] and p["dense"] is None  # bm25 computes no dense score
    assert "manufacturing superpower" in body["passages"][0]["text"]


def test_ask_json_is_answer_to_dict(api, ui_rag):
    got = api.post("/api/v1/ask", json={"question": QUESTION}).json()
    assert got == json.loads(json.dumps(ui_rag.ask(QUESTION).to_dict()))  # the same answer, field for field
    assert "manufacturing superpower" in got["answer"] and got["citations"]
    doc = ui_rag.index.documents[DOC]
    assert all(doc.text[c["start"]:c["end"]] == c["quote"] for c in got["citations"])


def test_follow_up_uses_the_history(api):
    first = api.post("/api/v1/ask", json={"question": QUESTION}).json()
    follow = api.post("/api/v1/ask", json={"question": "When was it launched?",
                                          "history": [{"question": QUESTION, "answer": first["answer"]}]}).json()
    assert "Made in China 2025" in follow["standalone_question"]


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_ask_streamed_as_server_sent_events(api):
    plain = api.post("/api/v1/ask", json={"question": QUESTION, "k": 4}).json()
    with api.stream("POST", "/api/v1/ask", json={"question": QUESTION, "k": 4},
                    headers={"Accept": "text/event-stream"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode()
    events = sse_events(text)
    names = [name for name, _ in events]
    assert names[-1] == "answer" and set(names[:-1]) == {"piece"} and len(names) >= 2
    assert "".join(data["text"] for name, data in events if name == "piece") == plain["answer"]
    assert events[-1][1] == plain


def test_bad_requests_are_one_line_json_errors(api):
    assert "question is empty" in error_of(api.post("/api/v1/ask", json={"question": "   "}), 400)
    assert "question is empty" in error_of(api.post("/api/v1/ask", json={"question": " "},
                                                    headers={"Accept": "text/event-stream"}), 400)
    assert error_of(api.post("/api/v1/search", json={"question": "x", "k": 0}), 400).startswith("k: ")
    assert error_of(api.post("/api/v1/search", json={"k": 3}), 400).startswith("question: ")
    assert "mode" in error_of(api.post("/api/v1/search", json={"question": "x", "mode": "magic"}), 400)
    assert "not valid JSON" in error_of(api.post("/api/v1/search", content=b"{bad",
                                                 headers={"Content-Type": "application/json"}), 400)
    assert "unknown" in error_of(api.post("/api/v1/search", json={"question": "x", "filters": {"colour": "red"}}),
                                 400)
    assert "not a date" in error_of(api.post("/api/v1/ask", json={"question": "x", "filters": {"date": ">=soon"}},
                                             headers={"Accept": "text/event-stream"}), 400)
    assert error_of(api.post("/api/v1/search", json={"question": "x", "collections": []}), 400)
    assert error_of(api.post("/api/v1/ask", json={"question": "x", "backend": "llm"}), 400).startswith(
        "the llm backend needs RAG_LLM_BASE_URL")


def test_unknown_collection_document_and_endpoint_are_404(api):
    assert error_of(api.post("/api/v1/ask", json={"question": QUESTION, "collections": ["default", "hr"]}),
                    404).startswith("unknown collection 'hr'")
    assert error_of(api.get("/api/v1/collections/hr/documents"), 404).startswith("unknown collection 'hr'")
    assert error_of(api.delete("/api/v1/collections/default/documents/nope.md"), 404) == "unknown document: nope.md"
    # a path outside the corpus is not a document, whatever it points at
    assert error_of(api.delete("/api/v1/collections/default/documents/..%2F..%2Fetc%2Fpasswd"), 404)
    assert "no API endpoint" in error_of(api.get("/api/v2/health"), 404)


def test_upload_list_ask_delete(api, api_server):
    r = api.post("/api/v1/collections/default/documents", files={"file": ("Etna notes.md", ETNA.encode())})
    assert r.status_code == 201, r.text
    assert r.json()["added"] and r.json()["document"] == "Etna notes.md" and "1 chunk indexed" in r.json()["status"]
    assert (api_server.corpus_dir / "Etna notes.md").read_text() == ETNA
    again = api.post("/api/v1/collections/default/documents", files={"file": ("Etna notes.md", ETNA.encode())})
    assert again.status_code == 200 and not again.json()["added"]
    listed = {d["id"]: d for d in api.get("/api/v1/collections/default/documents").json()}
    assert set(listed) == {DOC, "Etna notes.md"} and listed["Etna notes.md"]["title"] == "Mount Etna"
    answer = api.post("/api/v1/ask", json={"question": "How high is the summit of Mount Etna?"}).json()
    assert not answer["refused"] and "3,357 metres" in answer["answer"]
    assert answer["citations"][0]["doc_id"] == "Etna notes.md"

    gone = api.delete("/api/v1/collections/default/documents/Etna notes.md")
    assert gone.status_code == 200 and gone.json()["deleted"] == "Etna notes.md"
    assert not (api_server.corpus_dir / "Etna notes.md").exists()
    assert [d["id"] for d in api.get("/api/v1/collections/default/documents").json()] == [DOC]
    assert api.get("/api/v1/health").json()["documents"] == 1


def test_upload_rules(api, api_server):
    assert "not a supported type" in error_of(
        api.post("/api/v1/collections/default/documents", files={"file": ("run.sh", b"echo hi")}), 400)
    assert "over the 1 MB upload limit" in error_of(api.post(  # the server runs with --upload-max-mb 1
        "/api/v1/collections/default/documents", files={"file": ("big.txt", b"word " * 300_000)}), 413)
    assert "cannot add empty.md" in error_of(
        api.post("/api/v1/collections/default/documents", files={"file": ("empty.md", b"")}), 400)
    assert error_of(api.post("/api/v1/collections/default/documents"), 400).startswith("file: ")
    # a name with directories is stored flat, under a cleaned name, inside the corpus
    r = api.post("/api/v1/collections/default/documents", files={"file": ("../../escape.md", b"# Escape\n\nText.\n")})
    assert r.status_code == 201 and "/" not in r.json()["document"]
    assert not (api_server.corpus_dir.parent.parent / "escape.md").exists()
    assert api.delete(f"/api/v1/collections/default/documents/{r.json()['document']}").status_code == 200
    assert sorted(p.name for p in api_server.corpus_dir.iterdir()) == [DOC]


def test_index_locked_by_another_build_is_503(api, api_server):
    from rag.versions import locked

    with locked(api_server.index_dir):  # as a `rag index` in another process would hold it
        message = error_of(api.post("/api/v1/collections/default/documents",
                                    files={"file": ("later.md", b"# Later\n\nIndexed later.\n")}), 503)
    assert "already updating" in message
    assert not (api_server.corpus_dir / "later.md").exists()  # not half-added: a retry adds it
    retry = api.post("/api/v1/collections/default/documents", files={"file": ("later.md", b"# Later\n\nIndexed later.\n")})
    assert retry.status_code == 201 and retry.json()["added"]
    assert api.delete("/api/v1/collections/default/documents/later.md").status_code == 200


CSP_DIRECTIVES = {"default-src 'self'", "connect-src 'self'", "object-src 'none'", "frame-ancestors 'none'"}


def assert_secure_headers(response: httpx.Response, embed: bool = False) -> None:
    csp = response.headers.get("content-security-policy", "")
    directives = {d.strip() for d in csp.split(";")}
    assert CSP_DIRECTIVES - ({"frame-ancestors 'none'"} if embed else set()) <= directives, csp
    assert not re.search(r"https?:|wss?:|\*", csp), f"an external origin in the policy: {csp}"
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("referrer-policy") == "no-referrer"
    if embed:
        assert "frame-ancestors" not in csp and "x-frame-options" not in response.headers
    else:
        assert response.headers.get("x-frame-options") == "DENY"


def test_security_headers_on_app_and_api(api):
    for method, path in (("GET", "/"), ("GET", "/config"), ("GET", "/gradio_api/info"), ("GET", "/api/v1/health"),
                         ("GET", "/api/docs"), ("GET", "/api/v1/openapi.json"), ("GET", "/api/v1/nothing"),
                         ("POST", "/api/v1/search")):
        r = api.request(method, path, json={} if method == "POST" else None)
        assert r.status_code < 500, (path, r.status_code)
        assert_secure_headers(r)


def test_openapi_and_offline_docs(api):
    schema = api.get("/api/v1/openapi.json").json()
    paths = set(schema["paths"])
    assert {"/api/v1/health", "/api/v1/search", "/api/v1/ask", "/api/v1/collections",
            "/api/v1/collections/{name}/documents", "/api/v1/collections/{name}/documents/{doc_id}"} <= paths
    for ops in schema["paths"].values():
        for op in ops.values():
            assert "422" not in op["responses"] and "400" in op["responses"]
    answer = schema["components"]["schemas"]["AnswerOut"]["properties"]
    assert set(answer) == set(json.loads(json.dumps(_sample_answer_keys())))
    docs = api.get("/api/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "/api/v1/ask" in docs.text and "AnswerOut" in docs.text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", docs.text), "the docs page must load nothing external"
    assert "<script" not in docs.text


def _sample_answer_keys():
    from rag.types import Answer

    return list(Answer(question="q", text="t", citations=()).to_dict())


def test_login_token_no_index_and_allow_embed(tmp_path):
    """A server with a login and an API token, no index yet, and --allow-embed (started in seconds: no model load)."""
    import base64

    from apiserver import start
    from conftest import free_port
    from gradio_client import Client

    (tmp_path / "corpus").mkdir()
    served = start(tmp_path / "corpus", tmp_path / "index", free_port(), tmp_path, args=["--allow-embed"],
                   env={"RAG_AUTH_USER": "ann", "RAG_AUTH_PASSWORD": "s3cret", "RAG_API_TOKEN": "tok-123"})
    try:
        assert "login required" in served.banner and "this machine only" in served.banner
        with httpx.Client(base_url=served.url, timeout=30) as c:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer"},
                            {"Authorization": "Basic " + base64.b64encode(b"ann:wrong").decode()},
                            {"Authorization": "Basic !!"}):
                r = c.get("/api/v1/health", headers=headers)
                assert "authentication required" in error_of(r, 401)
                assert r.headers["www-authenticate"].startswith("Basic")
            assert error_of(c.get("/api/v1/openapi.json"), 401)  # the schema too
            assert c.get("/config").status_code == 401  # the app keeps its own login
            for auth in ({"auth": ("ann", "s3cret")}, {"headers": {"Authorization": "Bearer tok-123"}}):
                health = c.get("/api/v1/health", **auth)
                assert health.status_code == 200 and health.json()["status"] == "no index"
                assert "run `rag index` first" in health.json()["detail"]
                assert "run `rag index` first" in error_of(c.post("/api/v1/search", json={"question": QUESTION},
                                                                  **auth), 503)
                assert_secure_headers(health, embed=True)
            assert_secure_headers(c.get("/", follow_redirects=False), embed=True)
        Client(served.url, auth=("ann", "s3cret"), verbose=False)  # the app's login still works when mounted
    finally:
        served.stop()


def readme_curl_lines() -> list[str]:
    """The curl lines of the README block that starts with `# with rag serve running`."""
    from apiserver import ROOT

    blocks = re.findall(r"```bash\n(# with rag serve running.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 1, "README.md needs one ```bash block starting with '# with rag serve running'"
    return [line for line in blocks[0].splitlines() if line.startswith("curl ")]


def test_readme_curl_examples_run_against_a_live_server(api_server, tmp_path):
    import subprocess

    lines = readme_curl_lines()
    (tmp_path / "notes.md").write_text("# Notes\n\nThe pilot plant in Tianjin opened in 2019.\n")
    out = {}
    for line in lines:
        cmd = line.replace("http://127.0.0.1:7860/", api_server.url)
        assert cmd != line, f"the README example should use http://127.0.0.1:7860/: {line}"
        run = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, (line, run.stderr)
        kind = ("stream" if "event-stream" in line else "upload" if "-F " in line else "delete" if "DELETE" in line
                else line.split("/api/v1/", 1)[1].split()[0].rstrip("'"))
        out[kind] = run.stdout
    assert set(out) == {"health", "search", "ask", "stream", "collections", "upload",
                        "collections/default/documents", "delete"}, set(out)
    assert json.loads(out["health"])["status"] == "ok"
    assert len(json.loads(out["search"])["passages"]) == 3
    answer = json.loads(out["ask"])
    assert "2015" in answer["short_answer"] and answer["citations"]
    assert sse_events(out["stream"])[-1] == ("answer", answer)
    assert json.loads(out["collections"])[0]["name"] == "default"
    assert json.loads(out["upload"])["document"] == "notes.md"
    assert "notes.md" in [d["id"] for d in json.loads(out["collections/default/documents"])]
    assert json.loads(out["delete"])["deleted"] == "notes.md"
    assert not (api_server.corpus_dir / "notes.md").exists()
