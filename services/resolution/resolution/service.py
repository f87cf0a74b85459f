"""Resolution: owns cases from triage to closure (R3). Its handlers arrive with its own
issue; for now it runs, answers health and metrics, and owns its database.
"""
from mallcare_common.mongo import MongoDatabase
from mallcare_common.web import HealthAndMetrics


class ResolutionService(HealthAndMetrics):
    name = "resolution"

    store = MongoDatabase()
