"""Resolution: owns cases from triage to closure (R3). Its handlers arrive with its own
issue; for now it runs, answers health and metrics, and owns its database.
"""
from mallcare_common import web
from mallcare_common.mongo import MongoDatabase


class ResolutionService(web.HealthAndMetrics):
    name = "resolution"

    store = MongoDatabase()
