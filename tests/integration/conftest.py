"""Fixtures shared by the integration tests (the root conftest has the infrastructure)."""
import pytest

from analytics.service import AnalyticsService
from feedback.service import FeedbackService
from intake.service import IntakeService
from resolution.service import ResolutionService
from triage.service import TriageService


@pytest.fixture
def five_services(container_factory, service_config, web_client):
    """All five services in one test, subscribers first as the run script starts them:
    (containers by name, WebClients by name)."""
    containers = {}
    for service in (AnalyticsService, FeedbackService, ResolutionService, TriageService, IntakeService):
        containers[service.name] = container_factory(service, service_config(service.name))
        containers[service.name].start()
    return containers, {name: web_client(c) for name, c in containers.items()}
