"""The JSON answers: times as ISO 8601, whatever the answer holds. An HTML form's body is
read within the same limits as a JSON one. The public address links are made on is absolute.
Every service's HTTP routes are served by mallcare_common.web's server."""

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from analytics.service import AnalyticsService
from console.service import ConsoleService
from feedback.service import FeedbackService
from intake.service import IntakeService
from mallcare_common.inputs import InvalidInput
from mallcare_common.web import (
    MAX_BODY_BYTES,
    MAX_FORM_FIELDS,
    BodyTooLarge,
    MalformedBody,
    WebServer,
    client_address,
    json_response,
    jsonable,
    public_base_url,
    read_form,
)
from notify.service import NotifyService
from resolution.service import ResolutionService
from triage.service import TriageService

SERVICES = (IntakeService, TriageService, ResolutionService, FeedbackService, AnalyticsService, NotifyService)


@pytest.mark.parametrize("service_class", (*SERVICES, ConsoleService), ids=lambda cls: cls.name)
def test_every_http_route_is_served_by_the_mallcare_web_server(service_class):
    """Its server sets TCP_NODELAY (issue 21: an answer over 16 KiB waited about 40 ms for a
    delayed ACK) and answers errors as JSON; a route of nameko's own `http` would start
    nameko's server beside it, without either."""
    routes = [
        (name, entrypoint)
        for name in dir(service_class)
        for entrypoint in getattr(getattr(service_class, name), ENTRYPOINT_EXTENSIONS_ATTR, ())
        if isinstance(entrypoint, HttpRequestHandler)
    ]
    assert routes, service_class.name
    others = [name for name, entrypoint in routes if type(entrypoint.server) is not WebServer]
    assert not others, f"{service_class.name}: use mallcare_common.web.http for {others}"


def test_times_in_answers_are_iso_8601():
    # found by the fuzz run: analytics' actions and clocks said "2026-12-03 11:48:23+00:00"
    at = datetime(2026, 12, 3, 11, 48, 23, 838000, tzinfo=timezone.utc)
    value = {"at": at, "day": date(2026, 12, 31), "amount": Decimal("39.90"), "nested": [{"at": at}]}
    assert jsonable(value) == {
        "at": "2026-12-03T11:48:23.838000+00:00",
        "day": "2026-12-31",
        "amount": "39.90",
        "nested": [{"at": "2026-12-03T11:48:23.838000+00:00"}],
    }
    assert b'"2026-12-03T11:48:23.838000+00:00"' in json_response(200, value).get_data()


def form_request(body):
    return Request(
        EnvironBuilder(method="POST", data=body, content_type="application/x-www-form-urlencoded").get_environ()
    )


def test_a_form_reads_as_each_field_with_its_values():
    body = "token=abc.def&score=5&reasons=slow&reasons=other&comment=%E5%BE%88%E5%BF%AB+%26+%3Cb%3E&empty="
    assert read_form(form_request(body.encode())) == {
        "token": ["abc.def"],
        "score": ["5"],
        "reasons": ["slow", "other"],
        "comment": ["很快 & <b>"],
        "empty": [""],
    }


@pytest.mark.parametrize(
    "body, refusal, words",
    [
        (b"comment=" + b"x" * MAX_BODY_BYTES, BodyTooLarge, "body over"),
        (b"comment=%FF%FE", MalformedBody, "form refused"),  # not UTF-8
        (b"comment=\xff", MalformedBody, "form refused"),
        ("&".join(f"f{n}=1" for n in range(MAX_FORM_FIELDS + 1)).encode(), MalformedBody, "form refused"),
        (b"comment=a%00b", InvalidInput, "comment"),  # what the store cannot keep: named
    ],
)
def test_a_form_the_service_cannot_take_is_refused_as_json_bodies_are(body, refusal, words):
    with pytest.raises(refusal) as refused:
        read_form(form_request(body))
    assert words in (str(refused.value.messages) if refusal is InvalidInput else str(refused.value))


@pytest.mark.parametrize(
    "value, base",
    [
        ("https://service.example-mall.cn", "https://service.example-mall.cn"),
        ("https://example-mall.cn/service/", "https://example-mall.cn/service"),
        ("http://127.0.0.1:8004", "http://127.0.0.1:8004"),
    ],
)
def test_the_public_base_url_is_an_absolute_address(value, base):
    assert public_base_url({"MALLCARE": {"PUBLIC_BASE_URL": value}}) == base


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "service.example-mall.cn",
        "/answers",
        "ftp://example-mall.cn",
        "https://example-mall.cn/?x=1",
        "https://example-mall.cn/#top",
    ],
)
def test_without_a_public_base_url_feedback_does_not_start(value):
    with pytest.raises(RuntimeError, match="MALLCARE_PUBLIC_BASE_URL .* e.g. https://service.example-mall.cn"):
        public_base_url({"MALLCARE": {"PUBLIC_BASE_URL": value}})


@pytest.mark.parametrize(
    "forwarded, hops, client",
    [
        (None, 0, "10.1.1.9"),  # clients reach the service directly: the peer
        ("203.0.113.7", 0, "10.1.1.9"),  # and a header a client wrote is not believed
        ("203.0.113.7", 1, "203.0.113.7"),  # behind one proxy: the address it appended
        ("198.51.100.1, 203.0.113.7", 1, "203.0.113.7"),  # a client's own entry further left is ignored
        ("198.51.100.1, 203.0.113.7, 10.0.0.2", 2, "203.0.113.7"),  # two proxies: the outermost's
        ("203.0.113.7", 2, "10.1.1.9"),  # fewer entries than proxies: it did not come through them
    ],
)
def test_the_client_is_the_address_the_outermost_proxy_of_ours_saw(forwarded, hops, client):
    """R7.2, seed 000 (顯眼位置張貼投訴渠道): the customer's pages count per client address, and a
    client cannot choose its own by writing X-Forwarded-For."""
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    environ = EnvironBuilder(path="/portal/status", headers=headers, environ_base={"REMOTE_ADDR": "10.1.1.9"})
    assert client_address(Request(environ.get_environ()), hops) == client
