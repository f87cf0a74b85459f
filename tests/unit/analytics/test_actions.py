"""R5.3, R2.2: an improvement action records a 5-Why root-cause analysis, the action, its
owner and due date; it is done once, with evidence; an open one past its due date is
overdue; the input is validated with field-level messages."""

from datetime import date, datetime, timedelta, timezone

import pytest
from marshmallow import ValidationError

from analytics import actions
from analytics.schemas import ActionDoneIn, ActionIn, ActionQuery, ReportQuery
from mallcare_common.errors import Conflict

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)
BODY = {
    "mall_id": "sh-xujiahui",
    "problem": {"summary": "mouldy fruit at T-17", "category": "product.quality_defect", "merchant_id": "T-17"},
    "whys": [
        "fruit mouldy on sale",
        "shelf life not checked",
        "no check at delivery",
        "no receiving standard",
        "procurement standard silent on cold chain",
    ],
    "root_cause": "procurement standard silent on cold chain",
    "action": "add cold-chain receiving checks",
    "owner_id": "E3091",
    "due_date": "2026-12-15",
    "by": "E3901",
}


def recorded():
    return actions.new_action(ActionIn().load(BODY), actions.action_id("SHXJH", 1), NOW)


def test_an_action_is_recorded_open_with_its_why_chain():
    action = recorded()
    assert action["_id"] == "SHXJH-IA-0001" and action["status"] == "open"
    assert len(action["whys"]) == 5 and action["due_date"] == "2026-12-15" and action["created_by"] == "E3901"
    assert actions.view(action, date(2026, 12, 15), [])["overdue"] is False
    assert actions.view(action, date(2026, 12, 16), [])["overdue"] is True


def test_an_action_is_done_once_with_evidence():
    action = recorded()
    changes = actions.done(action, ActionDoneIn().load({"evidence": "checklist in use", "by": "E3091"}), NOW)
    assert changes == {"status": "done", "done_at": NOW, "done_by": "E3091", "evidence": "checklist in use"}
    closed = {**action, **changes}
    assert actions.view(closed, date(2027, 1, 1), [])["overdue"] is False  # done is never overdue
    with pytest.raises(Conflict):
        actions.done(closed, {"evidence": "again", "by": "E3091"}, NOW)


@pytest.mark.parametrize(
    "change,field",
    [
        ({"whys": []}, "whys"),
        ({"whys": ["w"] * 8}, "whys"),
        ({"whys": [""]}, "whys"),
        ({"due_date": "next week"}, "due_date"),
        ({"problem": {"category": "x"}}, "problem"),
        ({"root_cause": ""}, "root_cause"),
        ({"owner_id": None}, "owner_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_broken_action_is_refused_naming_the_field(change, field):
    with pytest.raises(ValidationError) as refused:
        ActionIn().load({**BODY, **change})
    assert field in refused.value.messages


def test_missing_fields_are_named():
    with pytest.raises(ValidationError) as refused:
        ActionIn().load({"mall_id": "sh-xujiahui"})
    assert {"problem", "whys", "root_cause", "action", "owner_id", "due_date", "by"} <= set(refused.value.messages)
    with pytest.raises(ValidationError) as refused:
        ActionDoneIn().load({"by": "E1"})
    assert "evidence" in refused.value.messages


def test_the_list_filter_and_the_report_query():
    assert actions.selection("sh-xujiahui", "overdue") == {"mall_id": "sh-xujiahui", "status": "open"}
    assert actions.selection(None, "done") == {"status": "done"}
    assert actions.selection(None, None) == {}
    with pytest.raises(ValidationError) as refused:
        ActionQuery().load({"status": "lost"})
    assert "status" in refused.value.messages
    assert ReportQuery().load({"period": "2026-Q4"}) == {
        "period": "2026-Q4",
        "mall_id": None,
        "format": "json",
        "lang": "zh",
    }
    assert ReportQuery().load({"period": "2026-Q4", "format": "xlsx", "lang": "en"})["format"] == "xlsx"
    with pytest.raises(ValidationError) as refused:
        ReportQuery().load({"period": "2026-13", "format": "pdf", "lang": "fr"})
    assert set(refused.value.messages) == {"period", "format", "lang"}


# --- proposals for systemic patterns (R2.2, R5.3) ---------------------------------------------


def systemic(number, received_at, recurrences=5, merchant="T-17"):
    return {
        "mall_id": "sh-xujiahui",
        "complaint_no": number,
        "payload": {
            "category": "product.expired",
            "merchant_id": merchant,
            "received_at": received_at,
            "systemic": True,
            "recurrences": recurrences,
        },
    }


def test_a_pattern_has_one_window_at_a_time():
    at = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    key, start, end = actions.pattern_window("sh-xujiahui", "T-17", "product.expired", at, 30)
    assert start <= at < end and end - start == timedelta(days=30)
    assert key == f"sh-xujiahui|T-17|product.expired|{start:%Y-%m-%d}"
    assert actions.pattern_window("sh-xujiahui", "T-17", "product.expired", at + timedelta(days=1), 30)[0] == key
    assert actions.pattern_window("sh-xujiahui", None, "product.expired", at, 30)[0].startswith(
        "sh-xujiahui|-|product.expired|"
    )
    assert actions.pattern_window("sh-xujiahui", "T-17", "product.expired", end, 30)[0] != key


def test_a_proposal_names_the_pattern_its_count_and_its_complaints():
    at = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    window = actions.pattern_window("sh-xujiahui", "T-17", "product.expired", at, 30)
    proposal = actions.proposal("SHXJH-IA-0002", systemic("N5", at), window, NOW)
    assert proposal["status"] == "proposed" and proposal["recurrences"] == 5
    assert actions.view(proposal, date(2027, 6, 1), ["N1", "N5"])["complaint_nos"] == ["N1", "N5"]
    stored_with_its_list = {**proposal, "complaint_nos": ["N2", "N5"]}  # as proposals were kept before 2026-12-06
    assert actions.view(stored_with_its_list, date(2027, 6, 1), ["N1", "N5"])["complaint_nos"] == ["N1", "N2", "N5"]
    assert proposal["problem"]["category"] == "product.expired" and proposal["problem"]["merchant_id"] == "T-17"
    assert "recurred 5 times at merchant T-17" in proposal["problem"]["summary"]
    assert actions.view(proposal, date(2027, 6, 1), [])["overdue"] is False  # nothing is due before the analysis
    with pytest.raises(Conflict, match="record its analysis first"):
        actions.done(proposal, ActionDoneIn().load({"evidence": "e", "by": "E3091"}), NOW)
    # a person analyses it: the proposal becomes that action, keeping its pattern and complaints
    adopted = {**proposal, **actions.adopt(proposal, ActionIn().load({**BODY, "proposal_id": "SHXJH-IA-0002"}), NOW)}
    assert adopted["status"] == "open" and adopted["owner_id"] == "E3091" and adopted["created_by"] == "analytics"
    assert adopted["pattern_key"] == window[0] and adopted["adopted_by"] == "E3901"  # its complaints stay joined
    with pytest.raises(Conflict, match="not a proposal"):
        actions.adopt(adopted, ActionIn().load(BODY), NOW)
