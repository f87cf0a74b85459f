"""R6.1, R6.2: each of the five services starts on its own against the real broker
and store and answers /health and /metrics."""
import pytest

from analytics.service import AnalyticsService
from feedback.service import FeedbackService
from intake.service import IntakeService
from resolution.service import ResolutionService
from triage.service import TriageService


@pytest.mark.parametrize("service", [IntakeService, TriageService, ResolutionService, FeedbackService,
                                     AnalyticsService], ids=lambda s: s.name)
def test_the_service_runs_alone_and_reports_its_health(service, container_factory, service_config, web_client):
    config = service_config(service.name)
    container = container_factory(service, config)
    container.start()
    web = web_client(container)

    health = web.get("/health")
    assert health.status_code == 200
    assert health.json() == {"service": service.name, "status": "ok", "store": "ok"}
    metrics = web.get("/metrics")
    assert metrics.status_code == 200
    assert "mallcare_events_handled_total" in metrics.text
