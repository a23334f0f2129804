"""The HTTP surface of a worker: /metrics, /healthz (alive) and /readyz (making progress).

Binds to loopback unless told otherwise (LEADROUTER_HTTP__HOST). With a bearer token
set, every path but /healthz (the liveness probe) answers 401 to a request without
`Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Readiness = Callable[[], tuple[bool, dict[str, str]]]
OPEN_PATHS = frozenset({"/healthz"})


def make_app(
    registry: CollectorRegistry, readiness: Readiness, bearer_token: str | None = None
) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_: web.Request) -> web.Response:
        ready, checks = readiness()
        return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)

    app = web.Application(middlewares=[_require_bearer(bearer_token)] if bearer_token else [])
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def _require_bearer(token: str) -> Middleware:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def require_bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        given = request.headers.get("Authorization", "").encode()
        # Constant time: the comparison does not tell how much of a guess was right.
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"error": "a bearer token is required"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="leadrouter"'},
            )
        return await handler(request)

    return require_bearer


async def start_http(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve `app`; returns the runner (to clean up) and the bound port (port 0 picks one)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    # aiohttp exposes the bound socket (needed when port 0 picked one) only here.
    for sock in getattr(site._server, "sockets", None) or ():
        bound = int(sock.getsockname()[1])
    return runner, bound
