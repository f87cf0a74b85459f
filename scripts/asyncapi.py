"""Writes the AsyncAPI 3.0 document of mallcare's events from the marshmallow schemas in
mallcare_common.contracts and the services' event handlers, so it cannot drift from the code.

    .venv/bin/python scripts/asyncapi.py          # rewrite docs/asyncapi.yaml and the SDK's copy
    .venv/bin/python scripts/asyncapi.py --check  # exit 1 if either is stale (the tests do this)

Per event type: a channel (address = routing key) on its publisher's `<service>.events`
topic exchange, one message whose payload is the envelope's JSON Schema with that
type's payload schema in it, a `send` operation for the publisher and a `receive`
operation per subscribing handler. One more channel, the event stream, holds every
event's message (event_stream.py) for replay. The subscriber SDK (sdk/mallcare-events) ships the
same document as JSON and validates events against it.
"""

import importlib
import json
import sys
from pathlib import Path

import yaml
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from mallcare_common.contracts import EVENT_TYPES, EnvelopeSchema
from mallcare_common.event_stream import EVENT_STREAM, HEADER_EVENT_ID, HEADER_EVENT_TYPE, HEADER_SOURCE
from mallcare_common.messaging import DEAD_LETTER_EXCHANGE, DELIVERY_LIMIT, BoundedEventHandler

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "asyncapi.yaml"
SDK_COPY = ROOT / "sdk" / "mallcare-events" / "mallcare_events" / "asyncapi.json"
SERVICES = ("intake", "triage", "resolution", "feedback", "analytics", "notify")
AMQP_BINDING = "0.3.0"


def subscriptions():
    """{(source, event_type): ["service.method", ...]} over the five service classes."""
    found = {}
    for name in SERVICES:
        module = importlib.import_module(f"{name}.service")
        [service] = [c for c in vars(module).values() if isinstance(c, type) and getattr(c, "name", None) == name]
        for attr in dir(service):
            for entrypoint in getattr(getattr(service, attr), ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(entrypoint, BoundedEventHandler):
                    found.setdefault((entrypoint.source_service, entrypoint.event_type), []).append(f"{name}.{attr}")
    return found


def json_schema(schema):
    """The JSON Schema of a marshmallow schema, nested schemas inlined. OpenAPI 3.1 mode,
    because its nullable fields are plain JSON Schema (`type: [string, "null"]`)."""
    plugin = MarshmallowPlugin(schema_name_resolver=lambda _: None)
    APISpec("mallcare events", "1", "3.1.0", plugins=[plugin])
    return tolerant(plugin.converter.schema2jsonschema(schema))


def tolerant(node):
    """Drop `additionalProperties: false` (apispec's reading of unknown=RAISE): producers
    may add fields without a new schema_version, so readers must accept unknown ones."""
    if isinstance(node, dict):
        return {k: tolerant(v) for k, v in node.items() if not (k == "additionalProperties" and v is False)}
    if isinstance(node, list):
        return [tolerant(v) for v in node]
    return node


def envelope(event):
    schema = json_schema(EnvelopeSchema)
    props = schema["properties"]
    props["event_type"]["const"] = event.name
    props["schema_version"]["const"] = event.version
    props["payload"] = {**json_schema(event.payload), "description": f"the {event.name} payload"}
    return schema


def generate():
    subscribed = subscriptions()
    channels, operations = {}, {}
    for event in EVENT_TYPES.values():
        ref = {"$ref": f"#/channels/{event.name}"}
        channels[event.name] = {
            "address": event.name,
            "description": f"Routing key `{event.name}` on `{event.source}.events`.",
            "messages": {
                event.name: {
                    "name": event.name,
                    "title": f"{event.name} (version {event.version})",
                    "summary": event.summary,
                    "contentType": "application/json",
                    "payload": envelope(event),
                    "x-schema-version": event.version,
                    "x-publisher": event.source,
                    "bindings": {"amqp": {"messageType": event.name, "bindingVersion": AMQP_BINDING}},
                }
            },
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "bindingVersion": AMQP_BINDING,
                    "exchange": {
                        "name": f"{event.source}.events",
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                    },
                }
            },
        }
        operations[f"{event.source}.send.{event.name}"] = {
            "action": "send",
            "channel": ref,
            "summary": f"{event.source} publishes {event.name} (from its outbox).",
            "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True, "bindingVersion": AMQP_BINDING}},
        }
        for handler in subscribed.get((event.source, event.name), []):
            service, method = handler.split(".")
            operations[f"{service}.{method}"] = {
                "action": "receive",
                "channel": ref,
                "summary": f"{service} handles {event.name} ({handler}).",
                "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING}},
                "x-queue": {
                    "name": f"evt-{event.source}-{event.name}--{handler}",
                    "durable": True,
                    "arguments": {
                        "x-queue-type": "quorum",
                        "x-delivery-limit": DELIVERY_LIMIT,
                        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                    },
                },
            }
    channels[EVENT_STREAM] = {
        "address": EVENT_STREAM,
        "description": "The event stream (x-queue-type: stream): every event of every service, the same "
        "body as it went out live, kept by age and size (MALLCARE_EVENT_STREAM_MAX_AGE, 14D, and "
        "MALLCARE_EVENT_STREAM_MAX_BYTES, 20 GB, by default). Each message carries the headers "
        f"{HEADER_EVENT_TYPE}, {HEADER_SOURCE} and {HEADER_EVENT_ID}; each delivery x-stream-offset. "
        "Read it from an offset, a time or the beginning (docs/events.md, Replay).",
        "messages": {name: {"$ref": f"#/channels/{name}/messages/{name}"} for name in EVENT_TYPES},
        "bindings": {
            "amqp": {
                "is": "queue",
                "bindingVersion": AMQP_BINDING,
                "queue": {"name": EVENT_STREAM, "durable": True, "exclusive": False, "autoDelete": False},
            }
        },
    }
    stream = {"$ref": f"#/channels/{EVENT_STREAM}"}
    operations["outbox.send.stream"] = {
        "action": "send",
        "channel": stream,
        "summary": "Each service's outbox relay writes each event to the stream (default exchange) once its "
        "live publish was confirmed, before it marks the event sent.",
        "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True, "bindingVersion": AMQP_BINDING}},
    }
    operations["sdk.replay"] = {
        "action": "receive",
        "channel": stream,
        "summary": "The subscriber SDK's StreamSubscriber replays it, then reads on live "
        "(basic.qos prefetch, manual ack, consumer argument x-stream-offset).",
        "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING}},
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "mallcare events",
            "version": "1",
            "description": "Complaint events of mallcare's five services, generated from "
            "mallcare_common.contracts by scripts/asyncapi.py. The envelope, delivery and "
            "versioning rules are in docs/events.md; sdk/mallcare-events subscribes with "
            "plain kombu.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "rabbitmq:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "the chain's RabbitMQ (AMQP_URI of the services)",
            }
        },
        "channels": channels,
        "operations": operations,
    }


def outputs():
    document = generate()
    return {
        DOC: "# Generated by scripts/asyncapi.py from mallcare_common.contracts: do not edit.\n"
        + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110),
        SDK_COPY: json.dumps(document, indent=1, ensure_ascii=False) + "\n",
    }


if __name__ == "__main__":
    wanted = outputs()
    if "--check" in sys.argv:
        stale = [
            str(p.relative_to(ROOT))
            for p, text in wanted.items()
            if not p.exists() or p.read_text(encoding="utf-8") != text
        ]
        sys.exit(f"stale: {', '.join(stale)}: run scripts/asyncapi.py" if stale else 0)
    for path, text in wanted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
