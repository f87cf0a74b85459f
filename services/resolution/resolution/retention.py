"""Retention for resolution's cases and incidents (issue 7):

    python -m resolution.retention [--dry-run] [--config services/resolution/config.yml]

A case closed more than retention_months ago keeps its decisions, amounts, states
and times, but its free text (findings, notes, objections, replies, the timeline
and the events in its outbox) loses phones, e-mails, ID and member numbers. A
finished incident (communicated or dismissed) is anonymised like a complaint - the
customer's name and contact go, and its text loses them too - once it finished
more than retention_months ago, or once the complaint it relates to was anonymised.
Nothing is touched twice; open incidents are never touched.
"""

import sys

from mallcare_common import retention
from mallcare_common.personal import anonymise_text, anonymised_customer

from .policy import load_policy

# Fields that keep ids and states, not text: left as they are.
_CASE_KEEP = {
    "_id",
    "mall_id",
    "state",
    "version",
    "round",
    "level",
    "opened_at",
    "triaged_event_id",
    "channel",
    "received_at",
    "merchant_id",
    "merchant_access",
    "category",
    "risk_level",
    "urgency",
    "department",
    "owner_id",
    "first_response_due_at",
    "resolution_due_at",
    "policy_version",
    "request_ids",
    "pending_events",
}
_INCIDENT_TEXT = (
    "description",
    "suggested_handling",
    "verification",
    "handling",
    "communication",
    "timeline",
    "outbox",
)
FINISHED = ("communicated", "dismissed")


def cases_due(cutoff):
    return {"state": "closed", "closure.at": {"$lte": cutoff}, "anonymised_at": None}


def incident_due(incident, cutoff, related_case):
    """A finished incident, finished by `cutoff` or about a complaint whose case closed by then."""
    if incident["state"] not in FINISHED or incident.get("anonymised_at"):
        return False
    finished = incident["communication" if incident["state"] == "communicated" else "verification"]["at"]
    related_closed = (
        related_case is not None and related_case["state"] == "closed" and related_case["closure"]["at"] <= cutoff
    )
    return finished <= cutoff or related_closed


def anonymised_case(case, now):
    """The `$set` for a closed case: every text field scrubbed, ids and states kept."""
    return {**{k: anonymise_text(v) for k, v in case.items() if k not in _CASE_KEEP}, "anonymised_at": now}


def anonymised_incident(incident, now):
    customer = incident.get("customer") or {}
    changes = {k: anonymise_text(incident[k], customer) for k in _INCIDENT_TEXT if k in incident}
    return {**changes, "customer": anonymised_customer(customer), "anonymised_at": now}


def anonymise(db, cutoff, now, dry_run):
    """Counts of cases and incidents due, and of those this run anonymised (none in a dry run)."""
    counts = {"candidates": 0, "anonymised": 0, "incident_candidates": 0, "incidents_anonymised": 0}
    for case in db.cases.find(cases_due(cutoff)):
        counts["candidates"] += 1
        if not dry_run:
            counts["anonymised"] += _set(db.cases, case, anonymised_case(case, now))
    # finished incidents still holding personal data: few (reports are rare), so checked one by one
    for incident in db.incidents.find({"state": {"$in": list(FINISHED)}, "anonymised_at": None}):
        related = incident.get("related_complaint_no")
        case = related and db.cases.find_one({"_id": related}, {"state": 1, "closure": 1})
        if incident_due(incident, cutoff, case or None):
            counts["incident_candidates"] += 1
            if not dry_run:
                counts["incidents_anonymised"] += _set(db.incidents, incident, anonymised_incident(incident, now))
    return counts


def _set(collection, doc, changes):
    """Compare-and-set on the version, like every other change (a handler acting at the same moment wins)."""
    return collection.update_one(
        {"_id": doc["_id"], "version": doc["version"], "anonymised_at": None}, {"$set": changes, "$inc": {"version": 1}}
    ).modified_count


if __name__ == "__main__":
    sys.exit(retention.command("resolution", anonymise, load_policy))
