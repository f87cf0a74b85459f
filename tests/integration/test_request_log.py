"""Issue 17: what an operator reads in a service's log. One JSON line per HTTP request
(method, route, status, ms, caller, request id), a refusal without traceback, a 5xx at
ERROR with its traceback under the request id its answer carries, and no customer's phone
number in any line, whatever the request held. What the service writes is what
config.yml's formatter makes of the records captured here."""

import logging

import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from intake.service import IntakeService
from mallcare_cli.examples import desk_complaint
from mallcare_common.logs import JsonFormatter
from mallcare_common.web import http, read_json
from tests.helpers import WebClient, bearer, staff

PHONE = "13987654321"
SH_DESK, SH_HANDLER = staff("D3001"), staff("E3501")


@pytest.fixture
def logged(caplog):
    """The lines the services write while the test runs, parsed."""
    import json

    caplog.set_level(logging.INFO)  # what the services run at (config.yml LOGGING)
    formatter = JsonFormatter()
    return lambda: [json.loads(formatter.format(record)) for record in caplog.records]


@pytest.fixture
def intake(container_factory, service_config, web_client):
    config = service_config("intake")
    container = container_factory(IntakeService, config)
    container.start()
    client = web_client(container)
    client.config = config
    return client


def request_lines(lines, response):
    return [line for line in lines if line.get("request_id") == response.headers["X-Request-Id"]]


def test_a_422_a_403_and_a_404_are_one_line_each_without_traceback(intake, logged):
    invalid = intake.post(
        "/complaints",
        headers={**SH_DESK, "X-Request-Id": "desk-7f3a9c2e"},
        json={**desk_complaint(description=f"请回电{PHONE}"), "anger_score": 9},
    )
    forbidden = intake.get("/audit", headers=SH_HANDLER)  # audit.read: legal and admin
    unknown = intake.get("/complaints/SHXJH-20261120-9999", headers={"X-Request-Id": "not an id!"})
    assert (invalid.status_code, forbidden.status_code, unknown.status_code) == (422, 403, 404)
    assert invalid.headers["X-Request-Id"] == "desk-7f3a9c2e"  # the caller's own id, when well-formed
    assert len(unknown.headers["X-Request-Id"]) == 32  # else a new one

    lines = logged()
    expected = {
        invalid: ("INFO", "POST", "/complaints", 422, "D3001", "VALIDATION_ERROR"),
        forbidden: ("WARNING", "GET", "/audit", 403, "E3501", "FORBIDDEN"),
        unknown: ("INFO", "GET", "/complaints/<string:number>", 404, "A0001", "NOT_FOUND"),
    }
    for response, (level, method, route, status, caller, error) in expected.items():
        [line] = request_lines(lines, response)
        assert (line["level"], line["method"], line["route"], line["status"], line["caller"], line["error"]) == (
            level,
            method,
            route,
            status,
            caller,
            error,
        )
        assert line["ms"] >= 0 and "traceback" not in line
    assert request_lines(lines, forbidden)[0]["reason"] == "E3501 (handler) may not audit.read"
    assert not [line for line in lines if "traceback" in line]  # nameko's own worker line is gone too
    assert PHONE not in str(lines)


def test_a_refused_rpc_call_is_one_line_without_traceback(intake, logged):
    with ClusterRpcProxy(
        {"AMQP_URI": intake.config["AMQP_URI"]}, context_data={"authorization": bearer()["Authorization"]}
    ) as cluster:
        with pytest.raises(RemoteError) as refused:
            cluster.intake.get_complaint("SHXJH-20261120-9999")
    assert refused.value.exc_type == "NotFound"
    [line] = [line for line in logged() if "intake.get_complaint" in line["message"]]
    assert line["level"] == "INFO" and line["logger"] == "nameko.containers" and "traceback" not in line


def test_an_rpc_call_the_input_gate_refuses_is_one_line_without_traceback_or_body(intake, logged):
    with ClusterRpcProxy(
        {"AMQP_URI": intake.config["AMQP_URI"]}, context_data={"authorization": bearer()["Authorization"]}
    ) as cluster:
        with pytest.raises(RemoteError) as refused:
            cluster.intake.register_complaint(desk_complaint(description=f"请回电{PHONE}", anger_score=2**64))
    assert refused.value.exc_type == "InvalidInput"
    [line] = [line for line in logged() if line.get("rpc") == "register_complaint"]
    assert (line["level"], line["logger"], line["error"]) == ("INFO", "mallcare_common.rpc", "InvalidInput")
    assert "traceback" not in line and "请回电" not in str(logged())


def test_a_path_no_route_serves_is_answered_and_logged_like_any_other(intake, logged):
    missing = intake.get("/complaint-list")
    wrong_method = intake.delete("/complaints")
    assert (missing.status_code, missing.json()["error"]) == (404, "NOT_FOUND")
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (405, "METHOD_NOT_ALLOWED")
    assert "POST" in wrong_method.headers["Allow"]
    lines = logged()
    for response in (missing, wrong_method):
        [line] = request_lines(lines, response)
        assert (line["level"], line["status"], line["route"]) == ("INFO", response.status_code, None)


def test_a_whole_complaint_leaves_its_phone_number_in_no_log_record(intake, caplog):
    caplog.set_level(logging.DEBUG, logger="mallcare_common")
    caplog.set_level(logging.INFO)
    complaint = desk_complaint(
        channel_ref="desk-log-17", customer={"name": "王女士", "phone": PHONE}, description=f"草莓发霉了，请回电{PHONE}"
    )
    created = intake.post("/complaints", json=complaint, headers=SH_DESK)
    assert created.status_code == 201, created.text
    number = created.json()["number"]
    assert (
        intake.get(f"/complaints/{number}/customer", params={"purpose": "revisit call"}, headers=SH_HANDLER).json()[
            "customer"
        ]["phone"]
        == PHONE
    )
    intake.post("/complaints", json={**complaint, "customer": {"phone": f"x{PHONE}"}}, headers=SH_DESK)  # 422
    records = caplog.records
    assert any(getattr(record, "route", None) == "/complaints/<string:number>/customer" for record in records)
    for record in records:  # the records themselves, before the formatter scrubs anything
        assert PHONE not in record.getMessage() + str(vars(record)) + (record.exc_text or "")


class Breaks:
    """A route that fails as an unforeseen bug does, its exception carrying the request's text."""

    name = "breaks"

    @http("POST", "/notes")
    def note(self, request):
        raise RuntimeError(f"could not store {read_json(request)['text']!r}")


def test_a_500_is_an_error_line_with_its_traceback_under_the_id_its_answer_carries(
    container_factory, service_config, logged
):
    container = container_factory(Breaks, service_config("breaks"))
    container.start()
    with WebClient(container) as client:
        answer = client.post("/notes", json={"text": f"请回电{PHONE}"})
    assert answer.status_code == 500
    body = answer.json()
    assert body == {
        "error": "INTERNAL_ERROR",
        "message": "unexpected error; the service log has it under this request_id",
        "request_id": answer.headers["X-Request-Id"],
    }
    lines = logged()
    [line] = request_lines(lines, answer)
    assert (line["level"], line["route"], line["status"], line["error"]) == ("ERROR", "/notes", 500, "INTERNAL_ERROR")
    assert line["exception"] == "RuntimeError"
    assert "in note" in line["traceback"]  # the worker's frames, where it failed
    assert "请回电" not in str(lines)  # not the message: it quotes the body
    assert [other for other in lines if "traceback" in other] == [line]  # once, not again from nameko
    assert PHONE not in str(lines)
