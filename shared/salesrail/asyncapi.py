"""AsyncAPI 3.0 documents generated from the code, through FastStream's specification builder.

Each service describes what it consumes (its `EventConsumer`s) and what it publishes (the event
models in its `publishers.PUBLISHES`); the payload of every channel is the contract's envelope
with the typed `data` of that subject. The broker here is never connected: it only describes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from pydantic import create_model

from salesrail.bus.consumer import EventConsumer
from salesrail.events.catalog import EventData, data_model_for
from salesrail.events.envelope import Envelope, subject_of
from salesrail.events.streams import stream_for_subject


@cache
def envelope_model(data_model: type[EventData]) -> type[Envelope]:
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{data_model.__name__}Event", __base__=Envelope, data=(data_model, ...)
    )


def _subject(event_type: str) -> str:
    # A family such as `sla.alert.*` is one channel, addressed by its NATS wildcard.
    return subject_of(event_type)


def asyncapi_document(
    *,
    title: str,
    version: str,
    description: str,
    consumers: Sequence[EventConsumer],
    publishes: Sequence[type[EventData]],
) -> dict[str, Any]:
    # Imported here: FastStream costs a third of a second at every service start, and the
    # document is built only when asked for.
    from faststream.nats import JStream, NatsBroker, PullSub
    from faststream.specification import AsyncAPI

    broker = NatsBroker()
    for model in publishes:
        broker.publisher(
            _subject(model.event_type),
            stream=JStream(stream_for_subject(_subject(model.event_type)).name, declare=False),
            title=f"{_subject(model.event_type)}:publish",
            description=(model.__doc__ or "").strip() or None,
            schema=envelope_model(model),
        )
    for consumer in consumers:
        for pattern in consumer.event_types():
            model = data_model_for(pattern)
            payload = envelope_model(model) if model else Envelope

            async def described(body: payload) -> None:  # type: ignore[valid-type]
                """Never called: the consumer's own pull loop does the work."""

            broker.subscriber(
                _subject(pattern),
                stream=JStream(consumer.stream.name, declare=False),
                durable=consumer.name,
                pull_sub=PullSub(),
                title=f"{_subject(pattern)}:{consumer.name}",
                description=consumer.description or None,
            )(described)
    spec = AsyncAPI(
        broker, title=title, version=version, description=description, schema_version="3.0.0"
    )
    return spec.to_specification().to_jsonable()  # type: ignore[no-any-return]
