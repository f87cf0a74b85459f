"""Feedback: owns revisits, satisfaction answers and the case library (R4). Its
handlers arrive with its own issue; for now it runs, answers health and metrics, and
owns its database.
"""
from mallcare_common import web
from mallcare_common.mongo import MongoDatabase


class FeedbackService(web.HealthAndMetrics):
    name = "feedback"

    store = MongoDatabase()
