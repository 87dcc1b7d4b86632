"""`hive.asgi(app)`: an ASGI application (Starlette, FastAPI's base, ...)
as the service's handler. Each request is one `http` scope: the body
arrives in one `http.request` message, the response is collected whole.
The lifespan `startup` runs once per instance, before its first request,
on the instance's own event loop (its `shutdown` never: an instance just
ends). The matched route and its parameters ride along as
`scope["hive.route"]` and `scope["hive.params"]`.

WASI has no threads: anyio's worker threads (Starlette runs plain `def`
endpoints in them) run the function inline instead."""

import asyncio
import traceback
from urllib.parse import unquote

from wit_world import exports

from . import loop
from .environ import header_pairs, host_and_port
from .records import Request, Response


def _run_sync_inline():
    """Makes anyio's `to_thread.run_sync` call the function inline."""
    try:
        import anyio.to_thread
    except ImportError:
        return

    async def run_sync(func, *args, **_options):
        return func(*args)

    anyio.to_thread.run_sync = run_sync


_run_sync_inline()


def scope_of(req: Request) -> dict:
    """The ASGI `http` scope for `req`."""
    server, port = host_and_port(req.headers)
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": req.method,
        "scheme": "http",
        "path": unquote(req.path),
        "raw_path": req.path.encode("latin-1", "replace"),
        "query_string": (req.query or "").encode("latin-1", "replace"),
        "root_path": "",
        "headers": [
            (name.encode("latin-1", "replace"), value.encode("latin-1", "replace"))
            for name, value in header_pairs(req.headers)
        ],
        "server": (server, int(port)),
        "client": None,
        "state": {},
        "hive.route": req.route,
        "hive.params": dict(req.params),
    }


async def _serve(app, scope, body: bytes) -> Response:
    delivered = False
    status = None
    headers = []
    chunks = []

    async def receive():
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [
                (bytes(name).decode("latin-1").lower(), bytes(value).decode("latin-1"))
                for name, value in message.get("headers", [])
            ]
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    try:
        await app(scope, receive, send)
    except Exception:
        # Starlette answers 500 itself, then raises for the server to log:
        # the client gets that answer, and the log the traceback, under
        # the request id.
        if status is None:
            raise
        traceback.print_exc()
    if status is None:
        raise RuntimeError("the ASGI app returned without starting a response")
    return Response(status, headers, b"".join(chunks))


def _start_lifespan(running, app, state: dict):
    """Starts the app's lifespan on `running` and waits for its startup
    to answer. The lifespan task then stays parked for the instance's
    life: its `shutdown` is never sent, as an instance just ends. An app
    that does not speak lifespan is fine, as servers treat it."""
    answered = running.create_future()
    never = running.create_future()
    asked = []

    async def receive():
        if not asked:
            asked.append(True)
            return {"type": "lifespan.startup"}
        return await never

    async def send(message):
        if not answered.done() and message["type"].startswith("lifespan.startup."):
            answered.set_result(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}
    task = running.create_task(app(scope, receive, send))
    running.run_until_complete(
        asyncio.wait([task, answered], return_when=asyncio.FIRST_COMPLETED)
    )
    if answered.done() and answered.result()["type"] == "lifespan.startup.failed":
        message = answered.result().get("message", "")
        raise RuntimeError(f"the ASGI app's lifespan startup failed: {message}")
    return task


def asgi(app):
    """The `Handler` class that serves `app`: `Handler = asgi(app)`."""
    instance = {}

    class Handler(exports.Handler):
        def handle(self, req: Request) -> Response:
            if "loop" not in instance:
                running = loop.Loop()
                asyncio.set_event_loop(running)
                state = {}
                instance["lifespan"] = _start_lifespan(running, app, state)
                instance["state"] = state
                instance["loop"] = running
            scope = scope_of(req)
            scope["state"] = dict(instance["state"])
            return instance["loop"].run_until_complete(_serve(app, scope, bytes(req.body)))

    return Handler
