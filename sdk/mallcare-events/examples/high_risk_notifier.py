"""A mall's customer-care desk notifier: prints each high-risk complaint once, as triage
grades it, with the reasons and the response deadline.

    AMQP_URI=amqp://guest:guest@localhost:5672/ python examples/high_risk_notifier.py [mall_id]

Its queue (`care-desk-notifier`) is durable: events that arrive while it is stopped wait.
"""

import logging
import os
import sys

from mallcare_events import Subscriber


def high_risk_notice(event, mall_id=None):
    """The line to print for a complaint_triaged event, or None when it is not for the desk."""
    assessment = event["payload"]
    if assessment["risk_level"] != "high" or mall_id not in (None, event["mall_id"]):
        return None
    reasons = ", ".join(r["reason"] for r in assessment["risk_reasons"] if r["level"] == "high")
    return (
        f"HIGH RISK {event['complaint_no']} at {event['mall_id']}: {reasons}; "
        f"{assessment['department']} responds by {assessment['first_response_due_at']}"
    )


def main(amqp_uri, mall_id=None, out=print, name="care-desk-notifier"):
    subscriber = Subscriber(amqp_uri, name)
    seen = set()  # at-least-once delivery: a redelivered event is printed once (a real desk keeps this in its store)

    @subscriber.on("complaint_triaged")
    def notify(event):
        if event["event_id"] not in seen and (notice := high_risk_notice(event, mall_id)):
            out(notice)
        seen.add(event["event_id"])

    return subscriber


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main(os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/"), *sys.argv[1:2]).run()
