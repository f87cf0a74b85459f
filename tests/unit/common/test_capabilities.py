"""Issue 18: a shared capability names what it needs, and a service class that takes it
without declaring that fails when the class is created, saying what to declare."""
import pytest

from mallcare_common import audit, messaging, retention, web
from mallcare_common.auth import Access
from mallcare_common.calendar import Clock
from mallcare_common.mongo import MongoDatabase


def test_a_service_taking_the_outbox_relay_without_a_dispatcher_is_refused_with_what_to_declare():
    with pytest.raises(TypeError, match=r"NoticeService takes messaging.OutboxRelay but does not declare "
                                        r"dispatch \(OutboxDispatcher\)$"):
        class NoticeService(messaging.OutboxRelay):
            name = "notice"
            store = MongoDatabase()
            clock = Clock()


def test_every_missing_dependency_is_named_at_once():
    with pytest.raises(TypeError) as refused:
        class NoticeService(audit.AuditReads):
            name = "notice"
    assert str(refused.value) == ("NoticeService takes audit.AuditReads but does not declare store (MongoDatabase), "
                                  "access (Access)")


def test_a_service_declaring_what_it_takes_is_created():
    class NoticeService(messaging.OutboxRelay, audit.AuditReads):
        name = "notice"
        store = MongoDatabase()
        clock = Clock()
        access = Access()
        dispatch = messaging.outbox_dispatcher()

    assert NoticeService.relay_outbox and NoticeService.audit_http


def test_retention_needs_its_anonymise_function_as_a_staticmethod():
    with pytest.raises(TypeError, match=r"retention_anonymise \(function\)"):
        class NoticeService(retention.RetentionAdmin):
            name = "notice"
            store = MongoDatabase()
            clock = Clock()
            access = Access()
            retention_anonymise = "not a function"


def test_health_and_policy_admin_need_their_declarations_too():
    with pytest.raises(TypeError, match=r"takes web.HealthAndMetrics but does not declare store \(MongoDatabase\), "
                                        r"http_api \(list or tuple\)$"):
        class NoticeService(web.HealthAndMetrics):
            name = "notice"
            access = Access()
    with pytest.raises(TypeError, match=r"takes web.PolicyAdmin but does not declare policy \(PolicyFiles\)$"):
        class NoticeAdmin(web.PolicyAdmin):
            name = "notice"
            access = Access()
