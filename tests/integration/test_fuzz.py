"""Bad input over HTTP, on the real broker and store: schemathesis generates requests for
every operation of every service's OpenAPI document (fetched from the running service's
GET /openapi.json, without credentials), both fitting the document and not, sends them
signed in, and checks that

- no answer is a 5xx,
- each status, content type and JSON body is one the document gives for that operation,
- a request that breaks the document is refused (4xx),
- a quarter of the JSON bodies get a lone surrogate appended to a string, as a client's
  JSON can escape one (schemathesis draws only text UTF-8 can encode): none may answer 5xx,
- afterwards every complaint, assessment, case, incident, revisit, library entry and
  improvement action stored is a whole record: it has the fields every such record has and
  its answer (through its marshmallow schema) fits the documented schema.

Path parameters are half the time the ids of a complaint, case, incident, revisit, library
entry and action made first, and a body's mall_id half the time a real mall, so that
requests reach the rules behind the 404s and 422s and new records get written. Each
operation gets at most EXAMPLES requests (the whole run stays near a minute on 2 cores);
the caller is a chain-wide admin, or where admins lack the permission (acting on cases
and incidents, revisits, the library, triage corrections; access.yml), a chain-wide
supervisor.
"""

import json
import time
from collections import Counter
from datetime import date

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from analytics.actions import view as action_view
from analytics.service import AnalyticsService
from feedback.schemas import LibraryOut, RevisitOut
from feedback.service import FeedbackService
from intake.schemas import ComplaintOut
from intake.service import IntakeService
from notify.schemas import MessageOut
from notify.service import NotifyService
from resolution.schemas import CaseOut, IncidentOut
from resolution.service import ResolutionService
from scripts.openapi import ROOT
from tests.integration.conftest import path_ids, seed, signed_in_for
from triage.schemas import AssessmentOut
from triage.service import TriageService

EXAMPLES = 30  # requests per operation at most
SERVICES = (IntakeService, TriageService, ResolutionService, FeedbackService, AnalyticsService, NotifyService)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The stored records and what every whole one has: (collection, answer schema, required fields).
RECORDS = {
    "intake": [
        (
            "complaints",
            "ComplaintOut",
            ComplaintOut,
            (
                "mall_id",
                "channel",
                "status",
                "received_at",
                "registered_at",
                "description",
                "customer",
                "policy_version",
            ),
        )
    ],
    "triage": [
        (
            "assessments",
            "AssessmentOut",
            AssessmentOut,
            (
                "mall_id",
                "status",
                "risk_level",
                "urgency",
                "department",
                "first_response_due_at",
                "resolution_due_at",
                "policy_version",
                "history",
            ),
        )
    ],
    "resolution": [
        (
            "cases",
            "CaseOut",
            CaseOut,
            ("mall_id", "state", "level", "timeline", "policy_version", "request_ids", "version"),
        ),
        (
            "incidents",
            "IncidentOut",
            IncidentOut,
            ("mall_id", "state", "type", "reported_at", "timeline", "policy_version", "version"),
        ),
    ],
    "feedback": [
        (
            "revisits",
            "RevisitOut",
            RevisitOut,
            ("complaint_no", "mall_id", "status", "round", "policy_version", "version"),
        ),
        ("library", "LibraryOut", LibraryOut, ("mall_id", "risk_level", "archived_at", "channel")),
    ],
    "notify": [
        (
            "messages",
            "MessageOut",
            MessageOut,
            (
                "complaint_no",
                "mall_id",
                "kind",
                "ref",
                "route",
                "status",
                "not_before",
                "attempts",
                "created_at",
                "version",
            ),
        )
    ],
    "analytics": [
        (
            "actions",
            "ActionOut",
            None,
            ("mall_id", "problem", "whys", "root_cause", "action", "owner_id", "due_date", "status", "created_at"),
        )
    ],
}


def broken_body(case):
    """A body that breaks the document must be refused. Only the body: a negated header is the
    credential this test puts back, and a negated query can be lost in its encoding."""
    body = case.meta and case.meta.components.get(ParameterLocation.BODY)
    return body is not None and body.mode == GenerationMode.NEGATIVE


def with_lone_surrogate(body, surrogate):
    """Append `surrogate` to the first string in `body`. Schemathesis draws only text UTF-8 can
    encode (it must send it), yet a client's JSON may escape a lone surrogate ("x\\ud800", as
    json.dumps writes it), and no store keeps one: the gate must refuse it (422), not the
    store fail on it (500; issue 17)."""
    stack = [body]
    while stack:
        node = stack.pop()
        for key, value in node.items() if isinstance(node, dict) else enumerate(node):
            if isinstance(value, str):
                node[key] = value + surrogate
                return
            if isinstance(value, (dict, list)):
                stack.append(value)


def fuzz(service, schema, base_url, ids):
    """Every operation of `schema`; returns (operations, {status: requests}, failures)."""
    session = requests.Session()
    operations, sent, failures = 0, Counter(), []
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        headers = signed_in_for(operation.definition.raw.get("x-permission"))
        fixed = path_ids(service, operation.path, ids)
        strategies = [
            operation.as_strategy(generation_mode=mode, path_parameters=known or None)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
            for known in ([{}, fixed] if fixed else [{}])
        ]

        @given(
            case=st.one_of(strategies),
            real_mall=st.booleans(),
            unpaired=st.integers(0, 3),
            surrogate=st.characters(categories=["Cs"]),
        )
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case, real_mall, unpaired, surrogate):
            # not in a broken body: its broken mall_id may be the very thing that breaks it
            if real_mall and not broken_body(case) and isinstance(case.body, dict) and "mall_id" in case.body:
                case.body["mall_id"] = "sh-xujiahui"  # so that new complaints, incidents and actions get stored
            # a quarter of the JSON bodies (a form's encoding cannot carry a lone surrogate at all)
            if unpaired == 0 and isinstance(case.body, (dict, list)) and case.media_type == "application/json":
                with_lone_surrogate(case.body, surrogate)
            # run() is called in this very iteration, so `headers` is this operation's
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)  # noqa: B023
            sent[response.status_code] += 1
            # a body over the size limit is refused (413) before it is read: schemathesis does not count
            # 413 as rejecting it
            refused_unread = response.status_code == 413
            case.validate_response(
                response,
                checks=CHECKS + ([negative_data_rejection] if broken_body(case) and not refused_unread else []),
                headers=headers,  # noqa: B023
            )

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # one failing operation must not hide the others
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    session.close()
    return operations, sent, failures


def members(db, action):
    """The complaints of an action's pattern, kept beside it (analytics' pattern_members)."""
    found = db.pattern_members.find({"pattern_key": action.get("pattern_key")}) if action.get("pattern_key") else []
    return sorted(m["complaint_no"] for m in found)


def whole_records(service, db, document, checked):
    """The stored records that are not whole, as messages; counts those it read in `checked`."""
    problems = []
    for collection, name, out_schema, required in RECORDS[service]:
        validator = OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": document["components"]})
        for record in db[collection].find():
            checked[f"{service}.{collection}"] += 1
            missing = [f for f in required if f not in record]
            answer = out_schema().dump(record) if out_schema else action_view(record, date.today(), members(db, record))
            errors = [e.message for e in validator.iter_errors(json.loads(json.dumps(answer, default=str)))]
            if missing or errors:
                problems.append(f"{service}.{collection} {record['_id']}: missing {missing}, {errors[:3]}")
    return problems


def test_no_operation_answers_5xx_or_off_its_document_and_every_record_stays_whole(system):
    ids = seed(system)
    figures, failures, started = {}, [], time.monotonic()
    documents = {}
    for service in SERVICES:
        base_url = system.web[service.name].base
        served = requests.get(base_url + "/openapi.json", timeout=10)  # open: no credentials
        assert served.status_code == 200
        documents[service.name] = served.json()
        checked_in = (ROOT / "docs" / "openapi" / f"{service.name}.json").read_text(encoding="utf-8")
        assert documents[service.name] == json.loads(checked_in)
        began = time.monotonic()
        operations, sent, failed = fuzz(
            service.name, schemathesis.openapi.from_dict(documents[service.name]), base_url, ids
        )
        figures[service.name] = {
            "operations": operations,
            "requests": sum(sent.values()),
            "by_status": dict(sorted(sent.items())),
            "seconds": round(time.monotonic() - began, 1),
        }
        failures += failed
    elapsed = time.monotonic() - started
    print(f"\nfuzz run: {elapsed:.1f}s", *(f"{name}: {f}" for name, f in figures.items()), sep="\n")
    checked = Counter()
    for service in SERVICES:
        failures += whole_records(service.name, system.db(service.name), documents[service.name], checked)
    print("records checked whole:", dict(checked))
    assert not failures, "\n\n".join(failures)
