"""Hive's Python package: the service's own interfaces with Python names
(`hive.kv`, `hive.config`, `hive.log`, `hive.trace`, `hive.call`,
`hive.events`), and adapters that make a WSGI app (Flask) or an ASGI app (Starlette) the
service's handler with one line:

    from hive import wsgi
    Handler = wsgi(app)

`hive build` bundles this package into every Python service. Importing it
imports every module of the packages in `requirements.txt` (see
`snapshot`): componentize-py snapshots the modules imported at build time,
and a later import of one not imported then fails.
"""

from wit_world.imports import config, kv, log, trace

from . import events
from .asgi import asgi
from .calls import CallFailed, call
from .snapshot import import_everything
from .wsgi import wsgi

import_everything()

__all__ = ["asgi", "call", "CallFailed", "config", "events", "kv", "log", "trace", "wsgi"]
