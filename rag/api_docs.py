"""The API's OpenAPI document (errors as `{"error": ...}`) and an offline docs page rendered from it.

FastAPI's own docs page loads swagger-ui from a CDN; this one is one self-contained HTML page (no
script, no external asset), so it works offline and under the strict Content-Security-Policy.
"""

from __future__ import annotations

import json
from html import escape

ERROR_REF = {"$ref": "#/components/schemas/Error"}
WHY = {400: "bad input", 401: "login required (HTTP Basic or bearer token)", 404: "unknown collection or document",
       413: "upload too large", 503: "index missing or being built"}


def openapi_with_errors(api, common: tuple[int, ...]) -> dict:
    """FastAPI's schema with its 422 validation responses replaced by our 400 and every error as Error."""
    if api.openapi_schema:
        return api.openapi_schema
    from fastapi.openapi.utils import get_openapi

    from .api_models import Error

    schema = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes)
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Error"] = Error.model_json_schema()
    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            for status in {*common, *(int(s) for s in responses if s.startswith(("4", "5")))}:
                responses[str(status)] = {"description": WHY.get(status, "error"),
                                          "content": {"application/json": {"schema": ERROR_REF}}}
    api.openapi_schema = schema
    return schema


def docs_page(schema: dict):
    """/api/docs: every operation with its parameters, bodies and responses, and every schema."""
    from fastapi.responses import HTMLResponse

    ops = []
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            params = "".join(f"<li><code>{escape(p['name'])}</code> ({escape(p.get('in', ''))})</li>"
                             for p in op.get("parameters", []))
            body = op.get("requestBody", {}).get("content", {})
            bodies = "".join(f"<li><code>{escape(kind)}</code>: {_type(spec.get('schema', {}))}</li>"
                             for kind, spec in body.items())
            responses = "".join(
                f"<li><b>{escape(code)}</b> {escape(r.get('description', ''))}: "
                + ", ".join(f"<code>{escape(k)}</code> {_type(v.get('schema', {}))}" for k, v in
                            r.get("content", {}).items()) + "</li>"
                for code, r in op.get("responses", {}).items())
            ops.append(f'<section class="op"><h3><span class="m">{method.upper()}</span> <code>{escape(path)}</code>'
                       f'</h3><p>{escape(op.get("summary", ""))}. {escape(op.get("description", ""))}</p>'
                       + (f"<h4>Parameters</h4><ul>{params}</ul>" if params else "")
                       + (f"<h4>Body</h4><ul>{bodies}</ul>" if bodies else "")
                       + f"<h4>Responses</h4><ul>{responses}</ul></section>")
    models = "".join(f'<section class="model" id="{escape(name)}"><h3>{escape(name)}</h3><pre>'
                     f"{escape(json.dumps(spec, indent=2, ensure_ascii=False))}</pre></section>"
                     for name, spec in schema.get("components", {}).get("schemas", {}).items())
    info = schema.get("info", {})
    html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(info.get("title", "API"))}'
            f"</title><style>{STYLE}</style></head><body><main><h1>{escape(info.get('title', 'API'))} "
            f"v{escape(str(info.get('version', '')))}</h1><p>{escape(info.get('description', ''))} Machine-readable: "
            '<a href="/api/v1/openapi.json">/api/v1/openapi.json</a>. Errors are <code>{"error": "..."}</code>.</p>'
            f"<h2>Operations</h2>{''.join(ops)}<h2>Schemas</h2>{models}</main></body></html>")
    return HTMLResponse(html)


def _type(spec: dict) -> str:
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#{escape(name)}">{escape(name)}</a>'
    if spec.get("type") == "array":
        return f"array of {_type(spec.get('items', {}))}"
    return escape(str(spec.get("type", "object")))


STYLE = ("body{font:15px/1.5 system-ui,sans-serif;color:#1a1a1a;background:#fff;margin:0}"
         "main{max-width:60rem;margin:0 auto;padding:1rem 1.5rem}code,pre{font-family:ui-monospace,monospace}"
         ".op{border:1px solid #ccc;border-radius:6px;padding:.25rem 1rem;margin:1rem 0}"
         ".m{background:#1f4e8c;color:#fff;border-radius:4px;padding:0 .4rem;font-size:.85em}"
         "pre{background:#f4f4f4;padding:.5rem;overflow:auto}a{color:#1f4e8c}")
