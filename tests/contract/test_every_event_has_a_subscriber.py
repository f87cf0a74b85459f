"""Every event type in the contracts is handled by at least one service. Outbox relays
publish with mandatory=True, so an event nobody is bound to is refused by the broker and
would wait in its outbox for ever (mallcare_outbox_pending never returning to 0)."""
import importlib

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from mallcare_common.contracts import EVENT_TYPES
from mallcare_common.messaging import BoundedEventHandler

SERVICES = ("intake", "triage", "resolution", "feedback", "analytics")


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


def test_every_event_type_has_a_subscriber():
    subscribed = subscriptions()
    orphans = [name for name, kind in EVENT_TYPES.items() if (kind.source, name) not in subscribed]
    assert orphans == []


def test_every_subscription_is_to_an_event_type_of_the_contracts():
    known = {(kind.source, name) for name, kind in EVENT_TYPES.items()}
    assert [key for key in subscriptions() if key not in known] == []
