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
def test_every_rpc_method_with_arguments_is_gated(service_class):
    methods = list(rpc_methods(service_class))
    with_arguments = [(name, entrypoint) for name, method, entrypoint in methods
                      if len(inspect.signature(method).parameters) > 1]
    assert with_arguments, f"{service_class.name} has no RPC method with arguments"
    ungated = [name for name, entrypoint in with_arguments if not isinstance(entrypoint, GatedRpc)]
    assert not ungated, f"{service_class.name}: use mallcare_common.rpc.rpc for {ungated}"
