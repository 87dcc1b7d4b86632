"""`py-starlette`: the Starlette app in `web.py`, served by Hive through
the ASGI adapter: one line of glue."""

from hive import asgi

from web import app

Handler = asgi(app)
