"""Every RPC method that takes arguments from its caller goes through the input gate
(mallcare_common.rpc.GatedRpc), so a new one cannot slip past it; the answers themselves
on the real broker: tests/integration/test_input_gate.py."""
import inspect

import pytest
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.rpc import Rpc

from analytics.service import AnalyticsService
from feedback.service import FeedbackService
from intake.service import IntakeService
from mallcare_common.rpc import GatedRpc
from resolution.service import ResolutionService
from triage.service import TriageService

SERVICES = (IntakeService, TriageService, ResolutionService, FeedbackService, AnalyticsService)


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
