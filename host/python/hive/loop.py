"""An asyncio event loop for a component: WASI has no sockets to wake a
selector with, so asyncio's own loop cannot start (it makes a socket pair
for its self-pipe). This one has no I/O to wait for: it runs ready
callbacks and sleeps until the next timer. Enough for an ASGI app, whose
only I/O is the request and response the adapter hands it."""

import asyncio
import time
from asyncio import base_events


class _NoIo:
    """The selector of a loop with no file descriptors: it only waits."""

    def select(self, timeout=None):
        if timeout:
            time.sleep(timeout)
        return []

    def close(self):
        pass


class Loop(base_events.BaseEventLoop):
    """asyncio's base loop with nothing to select on."""

    def __init__(self):
        super().__init__()
        self._selector = _NoIo()

    def _process_events(self, event_list):
        pass

    def _write_to_self(self):
        pass
