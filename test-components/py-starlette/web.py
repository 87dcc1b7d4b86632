"""A Starlette app as Starlette developers write it, with nothing of Hive
in it: the tests serve it under Hive (through `app.py`) and under
uvicorn, and compare the answers."""

import contextlib

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route

PREFIX = "/py-starlette"


@contextlib.asynccontextmanager
async def lifespan(app):
    # Runs once before the first request: what it yields is every
    # request's `request.state`.
    yield {"greeting": "hello", "started": 1}


class Tagged(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        response.headers["x-tag"] = request.headers.get("x-tag", "untagged")
        return response


async def index(request: Request):
    return PlainTextResponse(f"{request.state.greeting} from starlette")


async def user(request: Request):
    user_id = request.path_params["user_id"]
    return JSONResponse({"user": user_id, "next": user_id + 1})


async def echo(request: Request):
    try:
        data = await request.json()
    except ValueError:
        return JSONResponse({"error": "send JSON"}, status_code=400)
    return JSONResponse({"got": data}, status_code=201)


async def query(request: Request):
    return JSONResponse({"q": request.query_params.getlist("q")})


def plain(request: Request):
    # A plain `def` endpoint: Starlette runs it in a worker thread.
    return PlainTextResponse("plain def endpoint")


async def boom(request: Request):
    raise RuntimeError("a bug in an endpoint")


async def items(request: Request):
    return JSONResponse({"path": request.url.path, "name": request.path_params["name"]})


routes = [
    Route(f"{PREFIX}/", index),
    Route(f"{PREFIX}/users/{{user_id:int}}", user),
    Route(f"{PREFIX}/echo", echo, methods=["POST"]),
    Route(f"{PREFIX}/query", query),
    Route(f"{PREFIX}/plain", plain),
    Route(f"{PREFIX}/boom", boom),
    Mount(f"{PREFIX}/items", routes=[Route("/{name}", items)]),
]

app = Starlette(routes=routes, middleware=[Middleware(Tagged)], lifespan=lifespan)
