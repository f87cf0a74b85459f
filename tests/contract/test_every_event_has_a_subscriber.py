"""Every event type in the contracts is handled by at least one service. Outbox relays
publish with mandatory=True, so an event nobody is bound to is refused by the broker and
would wait in its outbox for ever (mallcare_outbox_pending never returning to 0)."""

from mallcare_common.contracts import EVENT_TYPES
from scripts.asyncapi import subscriptions


def test_every_event_type_has_a_subscriber():
    subscribed = subscriptions()
    orphans = [name for name, kind in EVENT_TYPES.items() if (kind.source, name) not in subscribed]
    assert orphans == []


def test_every_subscription_is_to_an_event_type_of_the_contracts():
    known = {(kind.source, name) for name, kind in EVENT_TYPES.items()}
    assert [key for key in subscriptions() if key not in known] == []
