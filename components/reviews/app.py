"""`reviews`: the shop's reviews, written in Python.

- `POST /reviews/<sku>` with `{"user", "stars", "text"}` checks the user
  through a typed call into the Rust `users` service
  (`shop:users/directory.get-user`) and stores the review in this service's
  own key-value store: 201 with the review, 404 for an unknown user, 400
  for a bad body.
- `GET /reviews/<sku>` answers the rating and every review of the item.
- Other services call `shop:reviews/reviews` (`rating-of`, `all-reviews`) with typed
  calls: the Rust `catalog` service does.

Everything is imported at the top: componentize-py snapshots the module at
build time, and nothing can be imported later.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.reviews import Rating, Review
from wit_world.imports import directory, kv, log
from wit_world.imports.types import Request, Response

# Most reviews one item keeps listing.
LIMIT = 1000


def review_key(sku: str, number: int) -> str:
    return f"review/{sku}/{number:08d}"


def load_reviews(sku: str) -> list:
    reviews = []
    for key in kv.list_keys(f"review/{sku}/", LIMIT):
        raw = kv.get(key)
        if raw is not None:
            reviews.append(Review(**json.loads(raw)))
    return reviews


def rating_of(reviews: list) -> Rating:
    return Rating(count=len(reviews), stars_total=sum(r.stars for r in reviews))


class Reviews(exports.Reviews):
    """The typed interface other services import."""

    def rating_of(self, sku: str) -> Rating:
        return rating_of(load_reviews(sku))

    def all_reviews(self, sku: str) -> list:
        return load_reviews(sku)


def json_response(status: int, value) -> Response:
    body = json.dumps(value).encode()
    return Response(status, [("content-type", "application/json")], body)


def error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


def add_review(sku: str, body: bytes) -> Response:
    try:
        fields = json.loads(body)
        user, stars, text = fields["user"], int(fields["stars"]), str(fields.get("text", ""))
    except (ValueError, KeyError, TypeError) as err:
        return error(400, f'expected a JSON body {{"user", "stars", "text"}}: {err}')
    if not 1 <= stars <= 5:
        return error(400, "stars must be 1 to 5")
    found = directory.get_user(user)
    if found is None:
        return error(404, f"no such user {user}")
    number = kv.increment(f"count/{sku}", 1)
    review = Review(user=found.id, name=found.name, stars=stars, text=text)
    kv.set(review_key(sku, number), json.dumps(review.__dict__).encode())
    log.log(log.Level.INFO, f"review {number} of {sku} by {found.id}")
    return json_response(201, review.__dict__)


def show_reviews(sku: str) -> Response:
    reviews = load_reviews(sku)
    rating = rating_of(reviews)
    return json_response(
        200,
        {
            "sku": sku,
            "rating": rating.__dict__,
            "reviews": [review.__dict__ for review in reviews],
        },
    )


class Handler(exports.Handler):
    """The HTTP side, routed by the host from service.toml."""

    def handle(self, req: Request) -> Response:
        sku = dict(req.params).get("sku", "")
        try:
            if req.method == "POST":
                return add_review(sku, req.body)
            if req.method == "GET":
                return show_reviews(sku)
            return error(405, f"{req.method} is not allowed here")
        except Err as err:
            # A kv error: say which, rather than trap.
            return error(503, f"storage: {err.value!r}")
