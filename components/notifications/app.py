"""`notifications`: what the shop would tell its customers, in Python.

- It subscribes to `order.placed` (see service.toml). The `orders` service
  publishes that event in the same commit that stores the order, so every
  stored order arrives here, at least once, even if this service was down
  or being redeployed when the order was placed.
- For each order it records the e-mail it would send, under
  `sent/<order id>` in its own key-value store. A second delivery of the
  same order (at-least-once) finds the record and changes nothing.
- `GET /notifications` lists what it recorded, oldest order first.

Everything is imported at the top: componentize-py snapshots the module at
build time, and nothing can be imported later.
"""

import json

from wit_world import exports
from wit_world.imports import kv, log
from wit_world.imports.hive_events_types import (
    Delivery,
    Disposition_Ack,
    Disposition_DeadLetter,
)
from wit_world.imports.hive_service_types import Request, Response

# Most notifications one listing returns.
LIMIT = 100_000


def sent_key(order_id: int) -> str:
    return f"sent/{order_id:012d}"


class Subscriber(exports.Subscriber):
    """Receives the topics in service.toml's [[subscribe]] entries."""

    def handle(self, delivery: Delivery):
        try:
            order = json.loads(delivery.payload)
            order_id, user = int(order["id"]), order["user"]
            quantity, sku = order["quantity"], order["sku"]
        except (ValueError, KeyError, TypeError) as err:
            # Retrying cannot make it readable: straight to the dead letters.
            return Disposition_DeadLetter(f"not an order: {err}")
        key = sent_key(order_id)
        if kv.get(key) is not None:
            return Disposition_Ack()
        note = {
            "order": order_id,
            "to": user["email"],
            "subject": f"Order {order_id} confirmed",
            "body": f"Hello {user['name']}, your {quantity} x {sku} are on their way.",
            "message_id": delivery.id,
            "attempt": delivery.attempt,
        }
        kv.set(key, json.dumps(note).encode())
        log.log(log.Level.INFO, f"would e-mail {user['email']}: order {order_id} confirmed")
        return Disposition_Ack()


def json_response(status: int, value) -> Response:
    body = json.dumps(value).encode()
    return Response(status, [("content-type", "application/json")], body)


class Handler(exports.Handler):
    """`GET /notifications`: what was recorded, oldest order first."""

    def handle(self, req: Request) -> Response:
        if req.method != "GET":
            return json_response(405, {"error": "use GET"})
        notes = []
        for key in kv.list_keys("sent/", LIMIT):
            raw = kv.get(key)
            if raw is not None:
                notes.append(json.loads(raw))
        return json_response(200, notes)
