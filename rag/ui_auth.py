"""The app's login check: constant-time comparison and back-off per client after repeated failures.

gradio calls `auth(username, password)` without the request, so the client's address comes from
a small ASGI middleware (`ClientAddress`) through a context variable. Behind a reverse proxy every
client has the proxy's address: the back-off then applies to all of them together.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import threading
import time

FREE_FAILURES = 5  # wrong passwords per client before the back-off starts
MAX_WINDOW = 300.0  # seconds: the longest a client is locked out after one more failure
MAX_DELAY = 3.0  # seconds a failed attempt waits before it is answered
MAX_CLIENTS = 10_000  # failure records kept (the oldest are forgotten first)

client_address: contextvars.ContextVar[str] = contextvars.ContextVar("client_address", default="unknown")


class ClientAddress:
    """ASGI middleware: records the client's address for `LoginGuard` (one context per request)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("client"):
            client_address.set(str(scope["client"][0]))
        await self.app(scope, receive, send)


class LoginGuard:
    """After FREE_FAILURES wrong logins from one client (address + username), each further one locks
    that client out for 1, 2, 4 ... MAX_WINDOW seconds; locked attempts are refused unchecked."""

    def __init__(self, user: str, password: str, clock=time.monotonic, sleep=asyncio.sleep):
        self._user, self._password = user.encode("utf-8", "surrogatepass"), password.encode("utf-8", "surrogatepass")
        self.clock, self.sleep = clock, sleep
        self.failures: dict[tuple[str, str], tuple[int, float]] = {}  # key -> (failures, locked until)
        self._lock = threading.Lock()

    def verify(self, username: str, password: str) -> bool:
        user_ok = hmac.compare_digest(username.encode("utf-8", "surrogatepass"), self._user)
        return hmac.compare_digest(password.encode("utf-8", "surrogatepass"), self._password) and user_ok

    async def check(self, username: str, password: str) -> bool:
        """gradio's `auth=` callable (a coroutine function, so gradio awaits it)."""
        key, now = (client_address.get(), username[:200]), self.clock()
        with self._lock:
            count, until = self.failures.get(key, (0, 0.0))
        if now < until:
            return False
        if self.verify(username, password):
            with self._lock:
                self.failures.pop(key, None)
            return True
        count += 1
        over = count - FREE_FAILURES
        with self._lock:
            self.failures.pop(key, None)  # re-inserted last: the dict stays in order of last failure
            self.failures[key] = (count, now + min(2.0 ** over, MAX_WINDOW) if over >= 0 else 0.0)
            while len(self.failures) > MAX_CLIENTS:
                del self.failures[next(iter(self.failures))]
        if over > 0:
            await self.sleep(min(0.25 * 2 ** (over - 1), MAX_DELAY))
        return False
