"""`hive.call`: the generic call to another service by name, as an HTTP
request that never leaves the host (typed calls use the generated
`wit_world.imports` modules of the service's own world)."""

from componentize_py_types import Err
from wit_world.imports import services

from .failures import case_of
from .records import Request


class CallFailed(Exception):
    """The call did not reach an answer: `kind` is the host's reason
    (`not-found`, `unavailable`, `failed`, `depth-exceeded`)."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def call(service: str, method: str, path: str, body: bytes = b"", headers=()):
    """Sends `method path` to `service`; returns its response record
    (`status`, `headers`, `body`), or raises `CallFailed`."""
    path, _, query = path.partition("?")
    request = Request(
        method=method.upper(),
        path=path,
        query=query or None,
        headers=[(name.lower(), value) for name, value in headers],
        route="",
        params=[],
        body=bytes(body),
    )
    try:
        return services.call(service, request)
    except Err as err:
        raise CallFailed(*case_of(err.value)) from None
