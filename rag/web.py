"""HTTP edges shared by the app and the API: security headers on every response, the API's login.

Both are plain ASGI middleware, so they wrap gradio's routes and the API's alike. The policy names
no origin but this one: the app needs nothing from anywhere else (system fonts, no CDN).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json

# Only this origin, and only what gradio's front end needs from it (tried in Chromium, tests/test_api_browser.py):
# its inline bootstrap scripts ('unsafe-inline': they embed per-request config, so no fixed hash), `new Function`
# for js_on_load snippets ('unsafe-eval'), inline styles (svelte style attributes), data:/blob: images; its
# websocket and server-sent events are covered by connect-src 'self'. Nothing else: no font, frame or object.
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'")


def security_headers(allow_embed: bool = False) -> list[tuple[bytes, bytes]]:
    """The headers every response carries; without allow_embed no page may frame this one."""
    csp = CSP if allow_embed else CSP + "; frame-ancestors 'none'"
    headers = [(b"content-security-policy", csp.encode()), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer")]
    if not allow_embed:
        headers.append((b"x-frame-options", b"DENY"))
    return headers


class SecurityHeaders:
    """ASGI middleware: adds `security_headers` to every HTTP response (replacing any the app set)."""

    def __init__(self, app, allow_embed: bool = False):
        self.app, self.headers = app, security_headers(allow_embed)
        self.names = {name for name, _ in self.headers}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in self.names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ApiLogin:
    """ASGI middleware: requests under `prefix` need HTTP Basic with the app's login (checked by the
    app's `LoginGuard`, so the same back-off applies) or `Authorization: Bearer <token>`; 401 JSON otherwise."""

    def __init__(self, app, guard, token: str = "", prefix: str = "/api/"):
        self.app, self.guard, self.prefix = app, guard, prefix
        self.token = token.encode("utf-8", "surrogatepass")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
        if await self.allowed(header):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "authentication required: HTTP Basic with RAG_AUTH_USER/RAG_AUTH_PASSWORD "
                                    "or Authorization: Bearer $RAG_API_TOKEN"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b'Basic realm="rag", charset="UTF-8"')]})
        await send({"type": "http.response.body", "body": body})

    async def allowed(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            # constant time; an unset token never matches (compare_digest of b"" and b"" is True)
            return bool(self.token) and hmac.compare_digest(value.strip().encode("utf-8", "surrogatepass"), self.token)
        if scheme.lower() == "basic":
            try:
                user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return False
            return bool(sep) and await self.guard.check(user, password)
        return False
