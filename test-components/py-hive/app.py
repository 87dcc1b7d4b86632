"""`py-hive`: a Flask app that uses Hive's interfaces through the `hive`
package: its config, its key-value store, a generic call to another
service, and a publish (its `wit/` world imports the events publisher)."""

from flask import Flask, abort, jsonify, request

import hive

app = Flask(__name__)


@app.get("/py-hive/config/<key>")
def config_value(key):
    value = hive.config.get(key)
    if value is None:
        abort(404)
    return jsonify(key=key, value=value)


@app.put("/py-hive/kv/<key>")
def put_value(key):
    hive.kv.set(key, request.get_data())
    return "", 204


@app.get("/py-hive/kv/<key>")
def get_value(key):
    value = hive.kv.get(key)
    if value is None:
        abort(404)
    return value, 200, {"content-type": "application/octet-stream"}


@app.post("/py-hive/count/<key>")
def count(key):
    return jsonify(count=hive.kv.increment(key, 1))


@app.get("/py-hive/call/<service>/<path:rest>")
def call(service, rest):
    try:
        answer = hive.call(service, "GET", f"/{rest}")
    except hive.CallFailed as failed:
        return jsonify(error=failed.kind, detail=failed.detail), 502
    return jsonify(status=answer.status, body=bytes(answer.body).decode())


@app.post("/py-hive/publish/<topic>")
def publish(topic):
    try:
        message_id = hive.events.publish(topic, request.get_data(), content_type="text/plain")
    except hive.events.PublishFailed as failed:
        return jsonify(error=failed.kind, detail=failed.detail), 400
    return jsonify(id=message_id), 202


Handler = hive.wsgi(app)
