"""In-process delivery of committed events: ``create_app(settings, on_event=…)``, and the
wake-up call for the in-process webhook worker."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from scimgate.events.outbox import Event

log = logging.getLogger("scimgate.events")

Listener = Callable[[Event], Any] | Callable[[Event], Awaitable[Any]]


class EventBus:
    """Calls listeners after commit: a request's events in the order it recorded them,
    once its transaction committed. Concurrent requests publish as each finishes, which
    need not be the order they committed in (two commits can complete in the same turn of
    the event loop): the feed is in commit order. A failing listener is logged and never
    fails the SCIM request: the outbox already holds the event durably."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            for listener in self._listeners:
                try:
                    result = listener(event)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("on_event listener failed for %s %s", event.type, event.id)
