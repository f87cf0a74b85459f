"""Every RPC method that takes arguments from its caller goes through the input gate
(mallcare_common.rpc.GatedRpc), so a new one cannot slip past it; the answers themselves
on the real broker: tests/integration/test_input_gate.py. And every RPC method expects
the errors HTTP answers with a 4xx, so that a caller's mistake is not logged as a fault
of the service in one edge and not the other."""

import inspect

import pytest
from marshmallow import ValidationError
from nameko.exceptions import BadRequest
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.rpc import Rpc

from analytics.service import AnalyticsService
from feedback.service import FeedbackService
from intake.service import IntakeService
from mallcare_common.auth import Forbidden, TooManyRequests, Unauthenticated
from mallcare_common.inputs import InvalidInput
from mallcare_common.mongo import NotFound, StoreError
from mallcare_common.policy import InvalidPolicy
from mallcare_common.rpc import GatedRpc
from mallcare_common.web import CLIENT_ERRORS, BodyTooLarge, Conflict, Gone, MalformedBody, Unavailable, status_of
from notify.service import NotifyService
from resolution.service import ResolutionService
from triage.service import TriageService

SERVICES = (IntakeService, TriageService, ResolutionService, FeedbackService, AnalyticsService, NotifyService)


def rpc_methods(service_class):
    for name in dir(service_class):
        method = getattr(service_class, name)
        for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, Rpc):
                yield name, method, entrypoint


@pytest.mark.parametrize("service_class", SERVICES, ids=lambda cls: cls.name)
def test_every_rpc_method_is_gated(service_class):
    """Those without arguments too: the service's RPC queue has one consumer, the gated one
    (nameko's own beside it would take some of the queue's messages and not know the methods)."""
    methods = list(rpc_methods(service_class))
    with_arguments = [name for name, method, entrypoint in methods if len(inspect.signature(method).parameters) > 1]
    assert with_arguments and len(with_arguments) < len(methods), f"{service_class.name}: {methods}"
    ungated = [name for name, method, entrypoint in methods if not isinstance(entrypoint, GatedRpc)]
    assert not ungated, f"{service_class.name}: use mallcare_common.rpc.rpc for {ungated}"


def test_the_client_errors_are_what_http_answers_with_a_4xx():
    raised = [
        ValidationError({"name": ["Missing."]}),
        InvalidInput({"data": ["Not stored."]}),
        InvalidPolicy("triage.yml", ["Not YAML."]),
        MalformedBody("not JSON"),
        BadRequest("bad"),
        Unauthenticated("who?"),
        Forbidden("no"),
        TooManyRequests("slow down", 5),
        NotFound("no case"),
        Conflict("closed"),
        Gone("expired"),
        BodyTooLarge("64 KiB"),
        StoreError("down"),
        Unavailable("no answer"),
        KeyError("bug"),
    ]
    client, other = [], []
    for exc in raised:
        (client if status_of(exc)[0] < 500 else other).append(exc)
    assert len(client) == 12 and len(other) == 3
    assert all(isinstance(exc, CLIENT_ERRORS) for exc in client)
    assert not any(isinstance(exc, CLIENT_ERRORS) for exc in other)


@pytest.mark.parametrize("service_class", SERVICES, ids=lambda cls: cls.name)
def test_every_rpc_method_expects_the_client_errors(service_class):
    """Those of the shared admin methods (policy, retention, audit) too."""
    methods = list(rpc_methods(service_class))
    others = [name for name, method, entrypoint in methods if entrypoint.expected_exceptions is not CLIENT_ERRORS]
    assert methods and not others, f"{service_class.name}: use @rpc(expected_exceptions=CLIENT_ERRORS) for {others}"
