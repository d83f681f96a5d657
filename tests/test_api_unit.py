"""Fast tests of the API's wiring with the fake embedder in-process (the contract tests in test_api.py run
the real `rag serve`): status mapping, streaming, the login middleware, the headers and the serve checks."""

from __future__ import annotations

import base64
import json
import socket

import pytest
from fastapi.testclient import TestClient

from rag.errors import RagError

Q = "What did the Eiffel Tower become?"


@pytest.fixture
def client(tiny_rag):
    from rag.api import create_api

    with TestClient(create_api(tiny_rag), raise_server_exceptions=False) as c:
        yield c


def test_search_ask_and_stream(client, tiny_rag):
    hits = client.post("/api/v1/search", json={"question": Q, "k": 2}).json()["passages"]
    assert len(hits) == 2 and all(tiny_rag.index.documents[h["doc_id"]].text[h["start"]:h["end"]] == h["text"]
                                  for h in hits)
    plain = client.post("/api/v1/ask", json={"question": Q}).json()
    assert plain == json.loads(json.dumps(tiny_rag.ask(Q).to_dict()))
    streamed = client.post("/api/v1/ask", json={"question": Q}, headers={"Accept": "text/event-stream"})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = [block.split("\n", 1) for block in streamed.text.strip().split("\n\n")]
    assert [e[0] for e in events] == ["event: piece", "event: answer"]
    assert json.loads(events[-1][1].removeprefix("data: ")) == plain


def test_statuses(client, tiny_rag):
    from rag.versions import locked

    def error(r, status):
        assert r.status_code == status and list(r.json()) == ["error"], r.text
        return r.json()["error"]

    assert error(client.post("/api/v1/ask", json={"question": "?!"}), 400) == "the question has no words in it; " \
                                                                              "type a question"
    assert error(client.post("/api/v1/search", json={"question": Q, "extra": 1}), 400).startswith("extra: ")
    assert error(client.post("/api/v1/search", json={"question": Q, "collections": ["x"]}), 404).startswith(
        "unknown collection 'x'")
    with locked(tiny_rag.settings.index_dir):
        assert "already updating" in error(client.post(
            "/api/v1/collections/default/documents", files={"file": ("n.md", b"# N\n\nNew text here.\n")}), 503)
    assert "over the 20 MB upload limit" in error(client.post(
        "/api/v1/collections/default/documents", content=b"x", headers={"content-length": str(30 * 2**20),
                                                                       "content-type": "multipart/form-data"}), 413)


def test_a_crash_is_a_500_json_line_not_a_traceback(client, tiny_rag, monkeypatch):
    monkeypatch.setattr(type(tiny_rag), "retrieve", lambda *a, **k: 1 / 0)
    r = client.post("/api/v1/search", json={"question": Q})
    assert r.status_code == 500 and r.json() == {"error": "something went wrong (ZeroDivisionError); see the server log"}
    events = client.post("/api/v1/ask", json={"question": Q}, headers={"Accept": "text/event-stream"}).text
    assert "event: error" in events and "ZeroDivisionError" in events and "Traceback" not in events


def test_login_middleware_basic_and_bearer():
    import asyncio

    from rag.ui_auth import LoginGuard
    from rag.web import ApiLogin

    async def ok(scope, receive, send):
        raise AssertionError("not reached")

    guard = LoginGuard("ann", "pw", sleep=lambda s: asyncio.sleep(0))
    login, no_token = ApiLogin(ok, guard, token="t0k"), ApiLogin(ok, guard, token="")
    basic = "Basic " + base64.b64encode(b"ann:pw").decode()

    def allowed(m, header):
        return asyncio.run(m.allowed(header))

    assert allowed(login, basic) and allowed(login, "Bearer t0k") and allowed(login, "bearer  t0k ")
    assert not allowed(login, "Bearer t0K") and not allowed(login, "") and not allowed(login, "Basic %%%")
    assert not allowed(login, "Basic " + base64.b64encode(b"ann:nope").decode())
    assert not allowed(no_token, "Bearer ") and not allowed(no_token, "Bearer")  # no token set: none matches


def test_create_app_has_login_headers_and_the_app(tiny_rag):
    from rag.server import create_app

    with TestClient(create_app(tiny_rag, auth=("ann", "pw"))) as c:
        assert c.get("/api/v1/health").status_code == 401
        health = c.get("/api/v1/health", auth=("ann", "pw"))
        assert health.json()["status"] == "ok" and health.json()["documents"] == 4
        assert c.get("/config").status_code == 401  # gradio's own login for the app
        page = c.get("/")
        for r in (health, page):
            assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    with TestClient(create_app(tiny_rag, allow_embed=True)) as c:
        r = c.get("/api/v1/health")
        assert r.status_code == 200 and "x-frame-options" not in r.headers
        assert "frame-ancestors" not in r.headers["content-security-policy"]


def test_serve_checks_before_loading_anything(tiny_settings):
    from rag.server import bind, serve

    with pytest.raises(RagError, match="RAG_API_TOKEN is set without a login"):
        serve(tiny_settings.replace(api_token="t"))
    with pytest.raises(RagError, match="not a loopback address"):
        serve(tiny_settings.replace(host="0.0.0.0"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(RagError, match="cannot listen on 127.0.0.1:.*pass a free --port"):
            bind("127.0.0.1", taken.getsockname()[1])


def test_a_delete_that_cannot_be_indexed_loses_nothing(client, tiny_rag):
    from rag.versions import locked

    corpus = tiny_rag.settings.corpus_dir
    with locked(tiny_rag.settings.index_dir):  # another build holds the index: 503, the file stays
        r = client.delete("/api/v1/collections/default/documents/tea.txt")
    assert r.status_code == 503 and (corpus / "tea.txt").is_file()
    for name in ("solar.md", "bees.txt", "rome.html"):
        assert client.delete(f"/api/v1/collections/default/documents/{name}").status_code == 200
    last = client.delete("/api/v1/collections/default/documents/tea.txt")  # an empty corpus cannot be indexed
    assert last.status_code == 400 and "no indexable documents" in last.json()["error"]
    assert sorted(p.name for p in corpus.iterdir()) == ["tea.txt"]  # back in place, no hidden leftovers
    assert [d["id"] for d in client.get("/api/v1/collections/default/documents").json()] == ["tea.txt"]


def test_the_command_line_does_not_import_the_web_stack():
    import subprocess
    import sys

    from apiserver import ROOT

    code = ("import sys, rag, rag.cli; rag.cli.parser().parse_args(['serve', '--allow-embed']); "
            "print(sorted(m for m in ('fastapi', 'gradio', 'uvicorn', 'starlette', 'pydantic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_two_collections_and_filters(tmp_path, tiny_settings, fake_embedder):
    """The API searches several collections at once, filters before the cut to k, and uploads into one."""
    from rag import collections as coll
    from rag.api import create_api
    from rag.pipeline import Rag

    settings = tiny_settings.replace(collections_dir=tmp_path / "collections")
    rag = Rag(settings, embedder=fake_embedder)
    rag.build(log=lambda *_: None)
    geo = coll.create(settings, "geo")
    (geo.corpus_dir / "volcano.md").write_text("---\nauthor: Vera Vulcan\n---\n# Volcanoes\n\nVolcanoes erupt "
                                               "lava and ash. Honey bees avoid volcanoes.", encoding="utf-8")
    Rag(coll.settings_for(settings, "geo"), embedder=fake_embedder).build(log=lambda *_: None)
    with TestClient(create_api(rag), raise_server_exceptions=False) as c:
        assert [x["name"] for x in c.get("/api/v1/collections").json()] == ["default", "geo"]
        both = {"question": "honey bees volcanoes ash", "k": 4, "collections": ["default", "geo"]}
        hits = c.post("/api/v1/search", json=both).json()["passages"]
        assert {h["collection"] for h in hits} == {"default", "geo"}
        only = c.post("/api/v1/search", json={**both, "filters": {"author": "Vera*"}}).json()["passages"]
        assert [(h["collection"], h["doc_id"]) for h in only] == [("geo", "volcano.md")]
        answer = c.post("/api/v1/ask", json={**both, "question": "Why do honey bees avoid volcanoes?"}).json()
        assert "geo" in {x["collection"] for x in answer["citations"]}
        r = c.post("/api/v1/collections/geo/documents", files={"file": ("lava.md", b"# Lava\n\nLava is molten rock.")})
        assert r.status_code == 201, r.text
        assert {d["id"] for d in c.get("/api/v1/collections/geo/documents").json()} == {"volcano.md", "lava.md"}
        assert "lava.md" not in {d["id"] for d in c.get("/api/v1/collections/default/documents").json()}
        assert (geo.corpus_dir / "lava.md").is_file()
