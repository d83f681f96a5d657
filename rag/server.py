"""`rag serve`: one uvicorn server for the JSON API (/api/v1, api.py) with the chat app mounted at /.

Loopback only unless --expose; with a login set, the app asks for it and the API takes HTTP Basic or
a bearer token; every response carries the security headers of web.py. "Serving ..." is printed
once the index and models are loaded and the socket accepts connections.
"""

from __future__ import annotations

import socket
import threading
import time

from .config import Settings
from .errors import RagError


def serve(settings: Settings, expose: bool = False, allow_embed: bool = False) -> None:
    """Start the app and the API on settings.host:settings.port and block until interrupted."""
    from .ui import auth_pair, check_host, configure_logging

    check_host(settings.host, expose)
    auth = auth_pair(settings)
    if settings.api_token and not auth:
        raise RagError("RAG_API_TOKEN is set without a login; set RAG_AUTH_USER and RAG_AUTH_PASSWORD too "
                       "(the token is an alternative to that login for the API)")
    configure_logging(settings)
    from .pipeline import Rag

    rag = Rag(settings)
    print("loading the index and models\u2026", flush=True)
    try:  # load the index, the model and the tagger now so the first question is as fast as later ones
        rag.warm_up()
    except RagError as e:
        print(f"warning: {e}; the app starts anyway and can index uploads")
    if expose and not auth:
        print("warning: serving beyond this machine without a login; set RAG_AUTH_USER and RAG_AUTH_PASSWORD")
    sock = bind(settings.host, settings.port)
    server, thread = start(create_app(rag, auth, allow_embed), sock)
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"Serving http://{host}:{settings.port}/ ({'exposed on ' + settings.host if expose else 'this machine only'}"
          f"{', login required' if auth else ''}); API at /api/v1, docs at /api/docs; press Ctrl+C to stop",
          flush=True)
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        server.should_exit = True
        thread.join(10)


def create_app(rag, auth: tuple[str, str] | None = None, allow_embed: bool = False):
    """The ASGI app: the API with the gradio app mounted at /, inside the login and header middleware."""
    import gradio as gr

    from .api import create_api
    from .ui import REPORTS_DIR, build_app
    from .ui_assets import CSS, theme
    from .ui_auth import ClientAddress, LoginGuard
    from .web import ApiLogin, SecurityHeaders

    s = rag.settings
    guard = LoginGuard(*auth) if auth else None
    api = create_api(rag)
    demo = build_app(rag, reports_dir=REPORTS_DIR)
    gr.mount_gradio_app(api, demo, path="/", auth=guard.check if guard else None, show_error=False,
                        ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False, run_history=False,
                        footer_links=["api"], max_file_size=f"{s.upload_max_mb}mb", theme=theme(), css=CSS,
                        server_name=s.host, server_port=s.port)
    app = ApiLogin(api, guard, s.api_token) if guard else api
    return SecurityHeaders(ClientAddress(app), allow_embed=allow_embed)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, so a taken port is one line here rather than a log inside uvicorn."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
        sock.set_inheritable(True)
    except OSError as e:
        raise RagError(f"cannot listen on {host}:{port} ({e.strerror or e}); pass a free --port") from None
    return sock


def start(app, sock: socket.socket, timeout: float = 60.0):
    """Run uvicorn on `sock` in a thread; returns (server, thread) once it accepts requests."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RagError("the server did not start; see the messages above")
        time.sleep(0.05)
    return server, thread

