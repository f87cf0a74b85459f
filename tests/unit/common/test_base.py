"""Issue 18: every service has one base, and takes each shared part by declaring the
dependency it rests on; what the part then needs is checked when the class is created,
with an error that says what to declare."""

import pytest

from mallcare_common.audit import AuditLog
from mallcare_common.base import Service
from mallcare_common.messaging import outbox_dispatcher
from mallcare_common.mongo import MongoDatabase
from mallcare_common.openapi import documented_operations
from mallcare_common.policy import PolicyFiles
from mallcare_common.retention import Retention


def routes(cls):
    return {(op.method, op.path) for op in documented_operations(cls)}


def anonymise(db, cutoff, now, dry_run):
    return {"candidates": 0, "anonymised": 0}


def test_a_service_without_its_store_is_refused_saying_what_to_declare():
    with pytest.raises(TypeError, match=r"^NoticeService takes Service but does not declare store \(MongoDatabase\)$"):

        class NoticeService(Service):
            name = "notice"


def test_the_base_alone_serves_health_metrics_and_the_document_and_nothing_else():
    class NoticeService(Service):
        name = "notice"
        store = MongoDatabase()

    assert routes(NoticeService) == {
        ("GET", "/health"),
        ("GET", "/health/live"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
    }
    assert not hasattr(NoticeService, "relay_outbox") and not hasattr(NoticeService, "reload_policy")


def test_each_part_comes_with_the_dependency_declared():
    class NoticeService(Service):
        name = "notice"
        store = MongoDatabase()
        policy = PolicyFiles("notice.yml", dict)
        dispatch = outbox_dispatcher()
        audit = AuditLog()
        retention = Retention(anonymise)

    assert {("GET", "/policy"), ("POST", "/policy/reload"), ("GET", "/audit"), ("POST", "/retention/run")} <= routes(
        NoticeService
    )
    assert all(
        callable(getattr(NoticeService, name))
        for name in (
            "get_policy",
            "reload_policy",
            "follow_policy_reload",
            "relay_outbox",
            "audit_log",
            "run_retention",
            "retention_sweep",
        )
    )


def test_retention_needs_the_policy_that_holds_retention_months():
    with pytest.raises(
        TypeError,
        match=r"^NoticeService takes RetentionAdmin but does not declare policy "
        r"\(PolicyFiles\)$",
    ):

        class NoticeService(Service):
            name = "notice"
            store = MongoDatabase()
            retention = Retention(anonymise)


def test_a_method_that_would_hide_a_part_is_refused():
    with pytest.raises(TypeError, match=r"NoticeService.relay_outbox would hide OutboxRelay's relay_outbox"):

        class NoticeService(Service):
            name = "notice"
            store = MongoDatabase()
            dispatch = outbox_dispatcher()

            def relay_outbox(self):
                pass
