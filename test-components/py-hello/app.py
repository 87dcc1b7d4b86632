"""`py-hello`: the smallest Python service, for the host's tests: it
answers its path, and counts calls in its own kv store."""

from wit_world import exports
from wit_world.imports import kv
from wit_world.imports.types import Request, Response


class Handler(exports.Handler):
    def handle(self, req: Request) -> Response:
        count = kv.increment("calls", 1)
        body = f"python says hello to {req.path} ({count})\n".encode()
        return Response(200, [("content-type", "text/plain; charset=utf-8")], body)
