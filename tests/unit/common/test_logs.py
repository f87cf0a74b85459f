"""The services' log lines (mallcare_common.logs): one JSON object a line, with the fields
given through `extra`, and no phone, e-mail or ID number whatever a record carried. And how
an exception is answered and logged (mallcare_common.web): status, code, level."""

import json
import logging
from pathlib import Path

import pytest
import yaml
from marshmallow import ValidationError
from pymongo.errors import ServerSelectionTimeoutError

from mallcare_common.auth import Forbidden, TooManyRequests, Unauthenticated
from mallcare_common.logs import JsonFormatter
from mallcare_common.mongo import NotFound
from mallcare_common.web import HttpEntrypoint, level_of, status_of

ROOT = Path(__file__).resolve().parents[3]
PHONE, EMAIL, ID_NUMBER = "13912345678", "zhang.wei@example.com", "11010519491231002X"


def record(message, *args, exc_info=None, **extra):
    return logging.getLogger("mallcare_common.web").makeRecord(
        "mallcare_common.web", logging.INFO, __file__, 1, message, args, exc_info, extra=extra
    )


def line(made):
    text = JsonFormatter().format(made)
    assert "\n" not in text
    return json.loads(text)


def test_a_record_is_one_json_line_with_time_level_logger_message_and_its_fields():
    written = line(
        record(
            "%s %s %s",
            "GET",
            "/complaints/<number>",
            404,
            route="/complaints/<number>",
            status=404,
            ms=3.2,
            caller="E3501",
            request_id="a" * 32,
        )
    )
    assert written.pop("time").endswith("+00:00")
    assert written == {
        "level": "INFO",
        "logger": "mallcare_common.web",
        "message": "GET /complaints/<number> 404",
        "route": "/complaints/<number>",
        "status": 404,
        "ms": 3.2,
        "caller": "E3501",
        "request_id": "a" * 32,
    }


def test_phones_e_mails_and_id_numbers_are_scrubbed_from_message_fields_and_traceback():
    try:
        raise ValueError(f"cannot store 请回电{PHONE}, {EMAIL}, 身份证{ID_NUMBER}")
    except ValueError as exc:
        written = JsonFormatter().format(
            record("failed: %s", exc, exc_info=(type(exc), exc, exc.__traceback__), note=f"call {PHONE}", items=[EMAIL])
        )
    for raw in (PHONE, EMAIL, ID_NUMBER):
        assert raw not in written
    parsed = json.loads(written)
    assert parsed["message"] == "failed: cannot store 请回电[phone], [e-mail], 身份证[ID number]"
    assert parsed["note"] == "call [phone]" and parsed["items"] == ["[e-mail]"]
    assert parsed["exception"] == "ValueError"
    assert parsed["traceback"].startswith("Traceback (most recent call last):")
    assert parsed["traceback"].endswith("ValueError: cannot store 请回电[phone], [e-mail], 身份证[ID number]")


def test_exc_info_without_an_exception_is_still_one_json_line():
    """`log.exception` outside an except block gives (None, None, None): no exception to name."""
    written = line(record("no exception here", exc_info=(None, None, None)))
    assert written["message"] == "no exception here" and "exception" not in written


def test_a_request_id_is_written_as_it_is_even_when_its_digits_read_as_a_phone():
    rid = "ab13912345678cd0" + "0" * 16
    assert line(record("x", request_id=rid))["request_id"] == rid


def test_a_lone_surrogate_in_a_record_still_makes_a_utf8_json_line():
    text = JsonFormatter().format(record("refused %s", "x\ud800y", field="\udfff"))
    text.encode("utf-8")  # a StreamHandler writing it to a UTF-8 file must not fail
    parsed = json.loads(text)
    assert parsed["message"] == "refused x\ud800y" and parsed["field"] == "\udfff"


def test_values_json_does_not_know_are_written_as_text_and_scrubbed():
    class Customer:
        def __str__(self):
            return f"customer {PHONE}"

    assert line(record("x", who=Customer()))["who"] == "customer [phone]"


def test_every_service_logs_with_the_same_configuration_json_lines_and_quiet_client_errors():
    configs = {
        path.parent.name: yaml.safe_load(path.read_text(encoding="utf-8"))["LOGGING"]
        for path in sorted(ROOT.glob("services/*/config.yml"))
    }
    assert set(configs) == {"analytics", "console", "feedback", "intake", "notify", "resolution", "triage"}
    intake = configs["intake"]
    assert all(config == intake for config in configs.values())
    assert intake["formatters"]["json"] == {"()": "mallcare_common.logs.JsonFormatter"}
    assert intake["handlers"]["console"]["formatter"] == "json"
    assert intake["filters"]["quiet_client_errors"] == {"()": "mallcare_common.web.QuietClientErrors"}
    assert intake["loggers"]["nameko.containers"]["filters"] == ["quiet_client_errors"]


@pytest.mark.parametrize(
    "error, status, level",
    [
        (ValidationError({"mall_id": ["Missing data for required field."]}), 422, logging.INFO),
        (NotFound("no complaint SHXJH-20261120-0001"), 404, logging.INFO),
        (Unauthenticated("token expired"), 401, logging.WARNING),
        (Forbidden("E4001 may not case.read"), 403, logging.WARNING),
        (TooManyRequests("over 3 a minute", 20), 429, logging.WARNING),
        (ServerSelectionTimeoutError("127.0.0.1:27101: connection refused"), 503, logging.ERROR),
        (UnicodeEncodeError("utf-8", "x\ud800", 1, 2, "surrogates not allowed"), 500, logging.ERROR),
    ],
)
def test_client_errors_are_info_or_warning_and_only_server_errors_are_errors(error, status, level):
    assert status_of(error)[0] == status
    assert level_of(status) == level


def test_an_unexpected_error_is_a_500_naming_the_request_id_and_nothing_of_the_error():
    response = HttpEntrypoint("POST", "/complaints").response_from_exception(
        UnicodeEncodeError("utf-8", f"请回电{PHONE}\ud800", 15, 16, "surrogates not allowed"), "r" * 32
    )
    assert response.status_code == 500
    assert json.loads(response.get_data()) == {
        "error": "INTERNAL_ERROR",
        "message": "unexpected error; the service log has it under this request_id",
        "request_id": "r" * 32,
    }


def test_the_runs_watch_finds_a_client_errors_traceback_in_a_service_processs_log(tmp_path):
    """The session's watch (tests/conftest.py) reads the logs of services run as processes:
    a 4xx request line or an RPC worker's client error with a traceback is found; a 5xx's,
    an event handler's and ordinary lines are not."""
    from tests.conftest import ClientErrorTracebacks

    lines = [
        {"logger": "mallcare_common.web", "message": "POST /complaints 422", "status": 422, "traceback": "..."},
        {
            "logger": "nameko.containers",
            "message": "error handling worker <WorkerContext [intake.get_complaint]>",
            "exception": "NotFound",
            "traceback": "...",
        },
        {"logger": "mallcare_common.web", "message": "POST /notes 500", "status": 500, "traceback": "..."},
        {
            "logger": "nameko.containers",
            "message": "error handling worker <WorkerContext [triage.handle_complaint_registered]>",
            "exception": "ValidationError",
            "traceback": "...",
        },
        {"logger": "mallcare_common.web", "message": "GET /health 200", "status": 200},
    ]
    log_path = tmp_path / "intake.log"
    log_path.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot JSON at all\n", encoding="utf-8")
    watch = ClientErrorTracebacks()
    watch.read(log_path)
    assert watch.found == [
        "intake.log: None POST /complaints 422",
        "intake.log: None error handling worker <WorkerContext [intake.get_complaint]>",
    ]
