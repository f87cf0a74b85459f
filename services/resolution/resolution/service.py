"""Resolution: owns cases from triage to closure (R3). Its handlers arrive with its own
issue; for now it runs, answers health and metrics, and owns its database.
"""
from mallcare_common.metrics import metrics_response
from mallcare_common.mongo import MongoDatabase
from mallcare_common.web import health_response, http


class ResolutionService:
    name = "resolution"

    db = MongoDatabase()

    @http("GET", "/metrics")
    def metrics(self, request):
        return metrics_response()

    @http("GET", "/health")
    def health(self, request):
        return health_response(self.name, self.db)
