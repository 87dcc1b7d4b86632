"""A Flask app as Flask developers write it, with nothing of Hive in it:
the tests serve it under Hive (through `app.py`) and under gunicorn, and
compare the answers."""

from flask import Blueprint, Flask, abort, g, jsonify, request, url_for

PREFIX = "/py-flask"

app = Flask(__name__)
items = Blueprint("items", __name__, url_prefix=f"{PREFIX}/items")


@app.before_request
def tag_request():
    g.tag = request.headers.get("x-tag", "untagged")


@app.errorhandler(LookupError)
def missing(err):
    return jsonify(error="missing", detail=str(err)), 404


@app.get(f"{PREFIX}/")
def index():
    return "<h1>py-flask</h1>"


@app.post(f"{PREFIX}/echo")
def echo():
    data = request.get_json(silent=True)
    if data is None:
        return jsonify(error="send JSON"), 400
    return jsonify(got=data, tag=g.tag), 201


@app.post(f"{PREFIX}/form")
def form():
    return jsonify(name=request.form.get("name"), tags=request.form.getlist("tag"))


@app.get(f"{PREFIX}/add/<int:a>/<int:b>")
def add(a, b):
    return jsonify(sum=a + b)


@app.get(f"{PREFIX}/files/<path:rest>")
def files(rest):
    return jsonify(rest=rest, link=url_for("files", rest="a/b.txt"))


@app.get(f"{PREFIX}/query")
def query():
    return jsonify(q=request.args.get("q"), all=request.args.getlist("q"))


@app.get(f"{PREFIX}/lookup/<name>")
def lookup(name):
    raise LookupError(f"no {name}")


@app.get(f"{PREFIX}/boom")
def boom():
    raise ValueError("a bug in a view")


@app.get(f"{PREFIX}/teapot")
def teapot():
    abort(418)


@app.get(f"{PREFIX}/headers")
def headers():
    response = jsonify(tag=g.tag, agent=request.headers.get("user-agent"))
    response.headers["x-served-by"] = "flask"
    response.set_cookie("seen", "yes")
    return response


@items.get("/")
def all_items():
    return jsonify(items=["mug", "tea"], link=url_for("items.all_items"))


@items.get("/<name>")
def one_item(name):
    return jsonify(item=name, link=url_for("items.one_item", name=name))


app.register_blueprint(items)
