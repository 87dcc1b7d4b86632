"""`py-hive`: a Flask app that uses Hive's interfaces through the `hive`
package: its config, its key-value store, a generic call to another
service, a publish (its `wit/` world imports the events publisher), and a
span of its own in the request's trace."""

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


@app.get("/py-hive/traced")
def traced():
    with hive.trace.Span("py-hive work") as span:
        span.set_attribute("py.items", "3")
    return jsonify(traceparent=hive.trace.traceparent())


Handler = hive.wsgi(app)
