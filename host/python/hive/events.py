"""`hive.events.publish(topic, payload, ...)`: a durable publish through
`hive:events/publisher`, for a service whose world imports it (a `wit/`
world with `import hive:events/publisher@0.1.0;`, beside
`include hive:service/service@0.1.0;`). Without it, publishing raises
`RuntimeError` saying so; the rest of `hive` works either way."""

from componentize_py_types import Err

from .failures import case_of

try:
    from wit_world.imports import publisher
    from wit_world.imports.hive_events_types import Message
except ImportError:
    publisher = None
    Message = None


class PublishFailed(Exception):
    """The store refused or lost the publish: `kind` is the error's case
    (`invalid-topic`, `too-large`, `invalid`, `storage`)."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def publish(
    topic: str,
    payload: bytes,
    content_type=None,
    metadata=(),
    delay_ms=None,
    dedup_key=None,
) -> str:
    """Publishes `payload` to `topic`; returns the message id once the
    message is durable."""
    if publisher is None:
        raise RuntimeError(
            "this service's world does not import hive:events/publisher@0.1.0: add "
            "`import hive:events/publisher@0.1.0;` to the world in its wit/ folder"
        )
    message = Message(
        payload=bytes(payload),
        content_type=content_type,
        metadata=list(metadata),
        delay_ms=delay_ms,
        dedup_key=dedup_key,
    )
    try:
        return publisher.publish(topic, message)
    except Err as err:
        raise PublishFailed(*case_of(err.value)) from None
