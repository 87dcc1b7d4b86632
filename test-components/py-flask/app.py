"""`py-flask`: the Flask app in `web.py`, served by Hive through the
WSGI adapter: one line of glue."""

from hive import wsgi

from web import app

Handler = wsgi(app)
