"""Issue 17, the input gate on the running services (real broker and store): a hostile or
careless client's barrage (lone surrogates in values and keys, control characters, 5,000
and 20,000 levels of nesting, integers past 64 bits, NaN, Infinity, 1e309, a number of
5,000 digits, wrong types, Mongo operators as values and `$where` as a key) sent to every
write route of every service's OpenAPI document gets only 4xx, each with the error code
and, for a 422, the field a client must fix. Nothing is stored, no complaint number is
taken (the next complaint gets the very next number), RPC callers get the reason, and
query strings and path parameters with NUL, control characters or bytes that are no
UTF-8 (an encoded surrogate, an overlong slash), and times at the ends of Python's range
in every date-time field and query parameter, get no 5xx either. Consumed events:
tests/integration/test_dead_letters.py."""

import json
import uuid
from urllib.parse import quote
from datetime import datetime, timedelta, timezone

from kombu import Connection, Exchange, Queue
from nameko.exceptions import RemoteError

from mallcare_cli.examples import desk_complaint
from tests.helpers import bearer, wait_for
from tests.integration.conftest import path_ids, seed, signed_in_for

SERVICES = ("intake", "triage", "resolution", "feedback", "analytics", "notify")
DEEP = "nested deeper than 32 levels"
# Yesterday in Shanghai: the complaints before and after the barrage share one day's sequence.
YESTERDAY = (datetime.now(timezone.utc) - timedelta(days=1)).replace(microsecond=0).isoformat()


def with_literal(base, field, literal):
    """`base` as JSON text with `field` set to the JSON text `literal` (which json.dumps may not write)."""
    return json.dumps({**base, field: "<here>"}).replace('"<here>"', literal).encode()


def barrage(base, field):
    """(name, raw body, status, the `fields` key a 422 names, or the words a 400's message holds).
    json.dumps writes a lone surrogate as its escape, "\\ud800", as a client's JSON would."""

    def body(value):
        return json.dumps({**base, field: value}).encode()

    return [
        ("lone surrogate", body("x\ud800"), 422, field),
        ("surrogate in a key", json.dumps({**base, "x\udc00": "v"}).encode(), 422, "x\\udc00"),
        ("NUL", body("a\x00b"), 422, field),
        ("terminal escape", body("\x1b[2J"), 422, field),
        ("2**64", body(2**64), 422, field),
        ("-2**63-1", body(-(2**63) - 1), 422, field),
        ("NaN", with_literal(base, field, "NaN"), 422, field),
        ("Infinity", with_literal(base, field, "-Infinity"), 422, field),
        ("1e309", with_literal(base, field, "1e309"), 422, field),
        ("5,000 levels", with_literal(base, field, '{"a":' * 5000 + "1" + "}" * 5000), 400, DEEP),
        ("20,000 levels", with_literal(base, field, "[" * 20000 + "]" * 20000), 400, DEEP),
        ("5,000 digits", with_literal(base, field, "1" * 5000), 400, "not JSON"),
        # a string never closed, of escaped quotes: read once, not again from each quote
        ("unclosed escaped quotes", with_literal(base, field, '"' + '\\"' * 28000), 400, "not JSON"),
        ("operator as value", body({"$gt": ""}), 422, field),
        ("wrong type", body(["a", 1]), 422, field),
        ("$where as key", json.dumps({**base, "$where": "1"}).encode(), 422, "$where"),
    ]


def write_operations(web):
    """(service, METHOD, path, field to break, the caller's headers) for every operation
    with a JSON body (the answer page's form: tests/integration/test_answer_page.py); the
    field is a string the body schema has (a required one first)."""
    for service in SERVICES:
        document = web[service].get("/openapi.json").json()
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                # (the path's own parameters are listed as "parameters")
                if method == "parameters" or "application/json" not in operation.get("requestBody", {}).get(
                    "content", {}
                ):
                    continue
                ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
                strings = [name for name, prop in schema.get("properties", {}).items() if prop.get("type") == "string"]
                strings.sort(key=lambda name: name not in schema.get("required", ()))
                yield (
                    service,
                    method.upper(),
                    path,
                    strings[0] if strings else "note",
                    signed_in_for(operation.get("x-permission")),
                )


def next_number(web):
    created = web["intake"].post(
        "/complaints", json=desk_complaint(channel_ref=uuid.uuid4().hex, received_at=YESTERDAY)
    )
    assert created.status_code == 201, created.text
    return created.json()["number"]


def sequence(number):
    return int(number.rsplit("-", 1)[1])


def complaints_stored(web):
    return web["intake"].get("/complaints", params={"per_page": 1}).json()["total"]


def test_a_barrage_on_every_write_route_gets_only_4xx_and_takes_no_complaint_number(system):
    web = system.web
    ids = seed(system)
    before = next_number(web)
    stored = complaints_stored(web)
    operations = list(write_operations(web))
    # notify writes from events only: none of its routes takes a body
    assert len(operations) >= 30 and {op[0] for op in operations} == set(SERVICES) - {"notify"}

    failures, sent = [], 0
    for service, method, path, field, headers in operations:
        url = path.format(**path_ids(service, path, ids))
        # a whole complaint at intake, broken in one field: the body that used to take a number
        base = desk_complaint(received_at=YESTERDAY) if path == "/complaints" else {}
        for name, raw, status, named in barrage(base, field):
            response = web[service].request(
                method, url, data=raw, headers={**headers, "Content-Type": "application/json"}
            )
            sent += 1
            where = f"{service} {method} {url} ({field}), {name}: {response.status_code} {response.text[:300]}"
            if response.status_code != status:
                failures.append(where)
                continue
            error = response.json()
            if status == 400 and (error["error"] != "MALFORMED_BODY" or named not in error["message"]):
                failures.append(where)
            if status == 422 and (
                error["error"] != "VALIDATION_ERROR"
                or named not in error.get("fields", {})
                or not all(isinstance(m, str) and m for m in error["fields"][named])
            ):
                failures.append(where)
    assert not failures, f"{len(failures)} of {sent} answers not as a client needs:\n" + "\n".join(failures)

    # nested fields are named by their path
    nested = web["intake"].post(
        "/complaints",
        data=json.dumps(
            desk_complaint(received_at=YESTERDAY, customer={"name": "王\ud800", "phone": "13812345678"})
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert nested.status_code == 422 and nested.json()["fields"] == {
        "customer": {"name": ["Not valid text: a lone surrogate (U+D800) at position 1."]}
    }

    assert complaints_stored(web) == stored
    after = next_number(web)
    assert (after.rsplit("-", 1)[0], sequence(after)) == (before.rsplit("-", 1)[0], sequence(before) + 1)
    for service in SERVICES:
        assert web[service].get("/health").status_code == 200


def raw_rpc(amqp_uri, routing_key, text):
    """Send an RPC request as a body nameko's client cannot write (a lone surrogate
    escaped, nesting it cannot encode, bytes that are no UTF-8), and return the reply."""
    reply_key = uuid.uuid4().hex
    exchange = Exchange("nameko-rpc", type="topic", durable=True)
    with Connection(amqp_uri) as conn:
        replies = Queue(
            f"test-reply-{reply_key}", exchange=exchange, routing_key=reply_key, channel=conn, auto_delete=True
        )
        replies.declare()
        conn.Producer().publish(
            text.encode() if isinstance(text, str) else text,
            exchange=exchange,
            routing_key=routing_key,
            reply_to=reply_key,
            correlation_id=reply_key,
            content_type="application/json",
            content_encoding="utf-8",
        )
        return json.loads(wait_for(lambda: replies.get(no_ack=True)).body)


def test_rpc_callers_get_the_reason_and_the_service_goes_on(system):
    web, amqp = system.web, system.amqp
    before = next_number(web)
    valid = desk_complaint(received_at=YESTERDAY)
    reply = raw_rpc(
        amqp, "intake.register_complaint", json.dumps({"args": [{**valid, "description": "x\ud800"}], "kwargs": {}})
    )
    assert reply["result"] is None and reply["error"]["exc_type"] == "InvalidInput"
    assert reply["error"]["exc_args"] == [
        {"data": {"description": ["Not valid text: a lone surrogate (U+D800) at position 1."]}}
    ]
    # bodies kombu could not decode (it raised in the consumer thread and took the container down)
    for body, reason in (
        ('{"args": [' + "[" * 5000 + "]" * 5000 + '], "kwargs": {}}', DEEP),
        (b'{"args": ["\xff\xfe"], "kwargs": {}}', "not UTF-8"),
    ):
        reply = raw_rpc(amqp, "intake.register_complaint", body)
        assert reply["error"]["exc_type"] == "MalformedInput" and reason in reply["error"]["value"], reply

    deep = []
    for _ in range(40):
        deep = [deep]
    with system.rpc(bearer()) as cluster:
        for data, kind, reason in (
            ({**valid, "anger_score": 2**64}, "InvalidInput", "Number out of range"),
            ({**valid, "anger_score": float("nan")}, "InvalidInput", "Not a finite number"),
            ({**valid, "staff_involved": deep}, "MalformedInput", DEEP),
        ):
            try:
                cluster.intake.register_complaint(data)
            except RemoteError as refused:
                assert refused.exc_type == kind and reason in refused.value, refused
            else:
                raise AssertionError(f"{kind} not raised")
        acknowledged = cluster.intake.acknowledge_complaint(before, {"method": "sms", "acknowledged_at": None})
        assert acknowledged["acknowledgement"]["method"] == "sms"  # null: left out, so now
        created = cluster.intake.register_complaint({**valid, "channel_ref": "rpc-after"})
    assert created["created"] and sequence(created["complaint"]["number"]) == sequence(before) + 1


BAD_QUERY_VALUES = ("%00", "%1B%5B2J", "%ED%A0%80", "%C0%AF", "%FF", "x%E2%80")  # NUL, escape, no UTF-8
# Times at the ends of Python's range: in UTC they are before year 1 or after 9999.
EDGE_TIMES = ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00")


def test_query_strings_path_parameters_and_times_no_store_keeps_get_no_5xx(system):
    web = system.web
    ids = {**seed(system), "mall_id": "sh-xujiahui", "mall_code": "SHXJH"}  # mall_code: the portal's pages
    answered, times = [], {}
    for service in SERVICES:
        document = web[service].get("/openapi.json").json()
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                if method == "parameters":
                    continue
                headers = signed_in_for(operation.get("x-permission"))
                query = operation.get("parameters", [])
                names = [p["name"] for p in query if p["in"] == "query"]
                real = path.format(**path_ids(service, path, ids))
                urls = [
                    f"{real}?{'&'.join(f'{name}={value}' for name in names)}" for value in BAD_QUERY_VALUES if names
                ]
                urls += [
                    path.format(**{name: value for name in path_ids(service, path, ids)})
                    for value in BAD_QUERY_VALUES
                    if "{" in path
                ]
                urls += [
                    f"{real}?{p['name']}={quote(value)}"
                    for p in query
                    if p["in"] == "query" and p["schema"].get("format") == "date-time"
                    for value in EDGE_TIMES
                ]
                body = {}
                if "requestBody" in operation:  # JSON, or a page's form (whose fields hold no time)
                    ref = next(iter(operation["requestBody"]["content"].values()))["schema"]["$ref"]
                    body = document["components"]["schemas"][ref.rsplit("/", 1)[-1]].get("properties", {})
                for url in urls:
                    response = web[service].request(
                        method.upper(), url, headers=headers, json={} if method == "post" else None
                    )
                    answered.append((response.status_code, f"{service} {method.upper()} {url}: {response.text[:200]}"))
                    times[f"{service} {method.upper()} {url}"] = response
                for field in [name for name, prop in body.items() if prop.get("format") == "date-time"]:
                    base = desk_complaint(received_at=YESTERDAY) if path == "/complaints" else {}
                    for value in EDGE_TIMES:
                        response = web[service].request(
                            method.upper(), real, headers=headers, json={**base, field: value}
                        )
                        answered.append(
                            (
                                response.status_code,
                                f"{service} {method.upper()} {real} {field}={value}: {response.text[:200]}",
                            )
                        )
                        times[f"{service} {method.upper()} {real} {field}={value}"] = response
    assert len(answered) > 100
    assert [where for status, where in answered if status >= 500] == []
    # where such a time used to be a 500 (converted to UTC for the store or a query), it is the field's 422
    for where, field in (
        ("intake POST /complaints received_at=", "received_at"),
        ("intake POST /complaints incident_time=", "incident_time"),
        ("intake GET /complaints?received_from=", "received_from"),
        ("intake GET /audit?since=", "since"),
        ("resolution GET /audit?since=", "since"),
    ):
        refused = [response for key, response in times.items() if key.startswith(where)]
        assert len(refused) == 2, where
        for response in refused:
            assert response.status_code == 422 and response.json()["fields"][field] == [
                "Not a time mallcare keeps: years 1900 to 2999."
            ], (where, response.text)
