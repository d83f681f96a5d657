"""The versioned JSON API under /api/v1 (FastAPI), served by `rag serve` beside the chat app.

Every error is `{"error": "one line"}` with its status: 400 bad input, 401 no login, 404 unknown
collection or document, 413 upload too large, 503 index missing or being built. Never a traceback.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from fastapi import FastAPI, File, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from .api_docs import docs_page, openapi_with_errors
from .api_models import (AnswerOut, AskRequest, Collection, Deleted, DocumentOut, Health,
                         SearchOut, SearchRequest, Upload)
from .collections import every
from .config import llm_configured
from .errors import IndexBusy, NotFound, RagError
from .filters import parse
from .types import hit_to_dict
from .scoped import Scoped
from .ui_render import UPLOAD_SUFFIXES
from .ui_upload import delete_document, store_document

log = logging.getLogger(__name__)
V1 = "/api/v1"
COMMON = (400, 401, 503)  # documented on every operation (see openapi_with_errors)


def create_api(rag) -> FastAPI:
    """A FastAPI app with the /api/v1 routes for one `Rag`; mount the chat app on it last."""
    api = FastAPI(title="rag HTTP API", version="1", openapi_url=f"{V1}/openapi.json", docs_url=None,
                  redoc_url=None, description="Search and ask the indexed documents; answers cite exact spans.")
    add_error_handlers(api)
    s = rag.settings
    api.add_middleware(UploadLimit, max_bytes=s.upload_max_mb * 2**20)
    scoped = Scoped(rag)

    @api.get(f"{V1}/health", response_model=Health, tags=["status"])
    def health():
        """Whether the index is usable, with its size."""
        try:
            manifest = rag.index.manifest
        except RagError as e:
            return Health(status="no index", model=s.model, documents=0, chunks=0, detail=str(e))
        docs = manifest["documents"]
        return Health(status="ok", model=s.model, documents=len(docs), chunks=sum(d["chunks"] for d in docs))

    @api.post(f"{V1}/search", response_model=SearchOut, tags=["ask"], responses={404: {}})
    def search(req: SearchRequest):
        """Ranked passages for a question (no answer)."""
        r = scoped(req.collections)
        question, _ = r.clean(req.question)
        hits = r.search(question, req.k, req.mode, filters=req.filters or None)
        return {"question": question, "mode": req.mode or s.mode, "collections": req.collections,
                "passages": [hit_to_dict(h) for h in hits]}

    @api.post(f"{V1}/ask", response_model=AnswerOut, tags=["ask"], responses={404: {}, 200: {"content": {
        "text/event-stream": {"schema": {"type": "string", "description": "`piece` events ({\"text\": ...}), then "
                                         "one `answer` event (the answer object) or one `error` event"}}}}})
    def ask(req: AskRequest, request: Request):
        """An answer with verified citations; streamed as server-sent events with `Accept: text/event-stream`."""
        r = scoped(req.collections)
        parse(req.filters or None)  # a bad filter is a 400 here, not an event in a 200 stream
        if (req.backend or s.backend) == "llm" and not llm_configured(s):
            raise RagError("the llm backend needs RAG_LLM_BASE_URL and RAG_LLM_MODEL; use the extractive backend")
        r.clean(req.question)  # a bad question is a 400 here, not an event in a 200 stream
        r.index  # noqa: B018 -- no index is a 503 before the stream starts
        history = [(t.question, t.answer) for t in req.history]
        stream = r.ask_stream(req.question, history, k=req.k, mode=req.mode, backend=req.backend,
                              filters=req.filters or None)
        if "text/event-stream" in request.headers.get("accept", ""):
            return StreamingResponse(sse(stream), media_type="text/event-stream",
                                     headers={"cache-control": "no-store", "x-accel-buffering": "no"})
        final = None
        for final in stream:
            pass
        return final.to_dict()

    @api.get(f"{V1}/collections", response_model=list[Collection], tags=["collections"])
    def collections():
        """Every collection (default first), with what its index holds."""
        return [Collection(name=d["name"], documents=d["documents"] or 0, chunks=d["chunks"] or 0)
                for d in (c.describe() for c in every(s))]

    @api.get(V1 + "/collections/{name}/documents", response_model=list[DocumentOut], tags=["collections"],
             responses={404: {}})
    def documents(name: str):
        """The indexed documents of a collection."""
        return [DocumentOut(id=d["id"], title=d.get("title", ""), chunks=d["chunks"],
                            indexed_at=d.get("indexed_at", "")) for d in scoped([name]).index.manifest["documents"]]

    @api.post(V1 + "/collections/{name}/documents", response_model=Upload, tags=["collections"],
              responses={201: {"model": Upload, "description": "added"}, 404: {}, 413: {}})
    def upload(name: str, file: UploadFile = File(description=f"one of {' '.join(UPLOAD_SUFFIXES)}")):
        """Add a file (same size, type and name rules as the app's upload) and re-index incrementally."""
        r = scoped([name])
        filename = (file.filename or "").strip()
        if Path(filename).suffix.lower() not in UPLOAD_SUFFIXES:
            raise RagError(f"{filename[:200] or 'the file'} is not a supported type; upload one of "
                           f"{' '.join(UPLOAD_SUFFIXES)}")
        limit = s.upload_max_mb
        if (file.size or 0) > limit * 2**20:
            raise HTTPException(413, f"{filename[:200]} is {file.size / 2**20:.1f} MB, over the {limit} MB upload "
                                     "limit; split it or raise RAG_UPLOAD_MAX_MB")
        with tempfile.TemporaryDirectory(prefix="rag-upload-") as tmp:
            path = Path(tmp) / "upload"
            with open(path, "wb") as out:
                while chunk := file.file.read(2**20):
                    out.write(chunk)
            stored, added, status = store_document(r, path, name=filename)
        return JSONResponse(Upload(added=added, document=stored, status=status).model_dump(),
                            status_code=201 if added else 200)

    @api.delete(V1 + "/collections/{name}/documents/{doc_id:path}", response_model=Deleted, tags=["collections"],
                responses={404: {}})
    def delete(name: str, doc_id: str):
        """Remove a document's file from the collection and re-index."""
        r = scoped([name])
        if doc_id not in {d["id"] for d in r.index.manifest["documents"]}:
            raise NotFound(f"unknown document: {doc_id[:200]}")
        return Deleted(deleted=doc_id, status=delete_document(r, doc_id))

    @api.get("/api/docs", include_in_schema=False)
    def docs():
        return docs_page(api.openapi())

    @api.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    def unknown(rest: str, request: Request):
        raise HTTPException(404, f"no API endpoint {request.method} /api/{rest[:200]}; see /api/docs")

    api.openapi = lambda: openapi_with_errors(api, COMMON)
    return api


class UploadLimit:
    """ASGI middleware: an upload whose declared length is over the limit is a 413 before its body is read."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith(V1 + "/collections/"):
            length = dict(scope.get("headers", [])).get(b"content-length", b"0")
            if length.isdigit() and int(length) > self.max_bytes + 2**16:  # room for the multipart framing
                limit = self.max_bytes // 2**20
                response = JSONResponse({"error": f"the upload is {int(length) / 2**20:.1f} MB, over the {limit} MB "
                                                  "upload limit; split it or raise RAG_UPLOAD_MAX_MB"}, status_code=413)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def sse(stream):
    """Server-sent events: a `piece` per text piece, then the `answer`; a failure mid-way is an `error` event."""
    def event(name: str, data) -> str:
        return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

    try:
        for item in stream:
            yield event("piece", {"text": item}) if isinstance(item, str) else event("answer", item.to_dict())
    except RagError as e:
        yield event("error", {"error": str(e)})
    except Exception as e:  # the traceback goes to the server log, never to the client
        log.exception("streamed answer failed")
        yield event("error", {"error": f"something went wrong ({type(e).__name__}); see the server log"})


def add_error_handlers(api: FastAPI) -> None:
    def error(status: int, message: str, headers=None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @api.exception_handler(HTTPException)
    async def http_error(_request, e: HTTPException):
        return error(e.status_code, str(e.detail), getattr(e, "headers", None))

    @api.exception_handler(RequestValidationError)
    async def invalid(_request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        if first.get("type") == "json_invalid":
            return error(400, f"the request body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})")
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        more = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
        return error(400, f"{where}: {first.get('msg', 'invalid')}{more}"[:500])

    @api.exception_handler(RagError)
    async def rag_error(_request, e: RagError):
        status = 503 if isinstance(e, IndexBusy) else 404 if isinstance(e, NotFound) else 400
        return error(status, str(e).splitlines()[0] if str(e) else type(e).__name__)

    @api.exception_handler(Exception)
    async def crash(request, e: Exception):
        log.error("%s %s failed", request.method, request.url.path, exc_info=e)
        return error(500, f"something went wrong ({type(e).__name__}); see the server log")
