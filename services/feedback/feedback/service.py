"""Feedback: owns revisits, satisfaction answers and the case library (R4). Its
handlers arrive with its own issue; for now it runs, answers health and metrics, and
owns its database.
"""
from mallcare_common.mongo import MongoDatabase
from mallcare_common.web import HealthAndMetrics


class FeedbackService(HealthAndMetrics):
    name = "feedback"

    store = MongoDatabase()
