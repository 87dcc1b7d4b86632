"""`hive.wsgi(app)`: a WSGI application (PEP 3333: Flask, Django, ...) as
the service's handler. Each request becomes an environ, the app's status,
headers and body become the response; the body is collected whole, as the
Hive world returns one. The matched route and its parameters ride along as
`hive.route` and `hive.params`."""

import io
import sys
from urllib.parse import unquote

from wit_world import exports

from .environ import header_pairs, host_and_port
from .records import Request, Response


def environ_of(req: Request) -> dict:
    """The PEP 3333 environ for `req`."""
    server, port = host_and_port(req.headers)
    environ = {
        "REQUEST_METHOD": req.method,
        "SCRIPT_NAME": "",
        # PEP 3333: the path decoded, as latin-1 characters standing for bytes.
        "PATH_INFO": unquote(req.path, encoding="latin-1"),
        "QUERY_STRING": req.query or "",
        "SERVER_NAME": server,
        "SERVER_PORT": port,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(req.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "hive.route": req.route,
        "hive.params": dict(req.params),
    }
    for name, value in header_pairs(req.headers):
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    if req.body and "CONTENT_LENGTH" not in environ:
        environ["CONTENT_LENGTH"] = str(len(req.body))
    return environ


def call_app(app, req: Request) -> Response:
    """Runs `app` on `req` and collects its answer."""
    started = {}
    written = []

    def start_response(status, headers, exc_info=None):
        if exc_info and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started["status"] = status
        started["headers"] = headers
        return written.append

    result = app(environ_of(req), start_response)
    try:
        for chunk in result:
            if chunk:
                written.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if "status" not in started:
        raise RuntimeError("the WSGI app returned without calling start_response")
    status = int(started["status"].split(" ", 1)[0])
    headers = [(name.lower(), value) for name, value in started["headers"]]
    return Response(status, headers, b"".join(written))


def wsgi(app):
    """The `Handler` class that serves `app`: `Handler = wsgi(app)`."""

    class Handler(exports.Handler):
        def handle(self, req: Request) -> Response:
            return call_app(app, req)

    return Handler
