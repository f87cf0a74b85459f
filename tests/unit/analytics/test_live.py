"""Issue 9's live dashboard: the running clocks counted as open, at risk (at_risk_at <= now
< due_at) and breached (due_at <= now), per stage (clocks) and per mall (complaints, each
once in the state of its worst clock); one mall or the chain; the policy's shares answered."""

from datetime import datetime, timedelta, timezone

import yaml

from analytics import clocks, live
from analytics.policy import load_policy
from mallcare_common.contracts.analytics import CLOCKS
from mallcare_common.malls import load_registry_file
from tests.conftest import POLICY_DIR

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
H = timedelta(hours=1)
A, B = "sh-xujiahui", "bj-chaoyang"


def running(number, name, hours, share=0.8, mall=A, started=T0):
    due = started + hours * H
    return {
        "mall_id": mall,
        "complaint_no": number,
        "clock": name,
        "due_at": due,
        "at_risk_at": clocks.at_risk_at(started, due, share),
    }


def test_a_clock_is_on_time_then_at_risk_at_its_share_then_breached_at_its_deadline():
    c = running("N1", "resolution", 10)  # at risk after 8 h, breached at 10 h
    assert [live.state_of(c, T0 + h * H) for h in (0, 7.9, 8, 9.9, 10, 50)] == [
        "on_time",
        "on_time",
        "at_risk",
        "at_risk",
        "breached",
        "breached",
    ]


def test_stages_count_clocks_and_totals_count_each_complaint_once_by_its_worst_clock():
    clocks_now = [
        running("N1", "first_response", 10),
        running("N1", "resolution", 100),  # N1: at risk (first response)
        running("N2", "first_response", 2),
        running("N2", "resolution", 100),  # N2: breached
        running("N3", "acknowledgement", 1, share=0.5),  # N3: breached
        running("N4", "resolution", 100),  # N4: on time
        running("N5", "acknowledgement", 20, share=0.5, mall=B),  # N5 at B: on time
        running("N6", "revisit", 9, mall=B),  # N6 at B: at risk
    ]
    now = T0 + 8.5 * H
    shares = {name: 0.5 if name == "acknowledgement" else 0.8 for name in CLOCKS}
    chain = live.live_report(clocks_now, now, shares)
    assert (chain["open"], chain["at_risk"], chain["breached"]) == (6, 2, 2)
    assert chain["by_stage"] == [  # in the policy's (the contract's) order of clocks
        {"stage": "acknowledgement", "open": 2, "at_risk": 0, "breached": 1},
        {"stage": "first_response", "open": 2, "at_risk": 1, "breached": 1},
        {"stage": "resolution", "open": 3, "at_risk": 0, "breached": 0},
        {"stage": "revisit", "open": 1, "at_risk": 1, "breached": 0},
    ]
    assert chain["by_mall"] == [  # most breached first
        {"mall_id": A, "open": 4, "at_risk": 1, "breached": 2},
        {"mall_id": B, "open": 2, "at_risk": 1, "breached": 0},
    ]
    assert chain["as_of"] == now and chain["mall_id"] is None and chain["at_risk_share"] == shares

    mine = live.live_report(clocks_now, now, shares, mall_id=B)
    assert (mine["open"], mine["at_risk"], mine["breached"]) == (2, 1, 0)
    assert [r["stage"] for r in mine["by_stage"]] == ["acknowledgement", "revisit"]
    assert mine["by_mall"] == [{"mall_id": B, "open": 2, "at_risk": 1, "breached": 0}]


def test_malls_rank_by_breached_then_at_risk_then_open():
    clocks_now = [
        running("X1", "resolution", 1, mall="gz-tianhe"),  # breached
        running("A1", "resolution", 9, mall=A),
        running("A2", "resolution", 9, mall=A),  # 2 at risk
        running("B1", "resolution", 9, mall=B),
        running("B2", "resolution", 99, mall=B),
        running("B3", "resolution", 99, mall=B),
    ]  # 1 at risk, 3 open
    ranked = live.live_report(clocks_now, T0 + 8 * H, {})["by_mall"]
    assert [r["mall_id"] for r in ranked] == ["gz-tianhe", A, B]


def test_every_mall_named_has_a_row_even_with_nothing_open():
    chain = live.live_report([running("B1", "resolution", 9, mall=B)], T0 + 8 * H, {}, malls=(A, B, "gz-tianhe"))
    assert chain["by_mall"] == [
        {"mall_id": B, "open": 1, "at_risk": 1, "breached": 0},
        {"mall_id": "gz-tianhe", "open": 0, "at_risk": 0, "breached": 0},
        {"mall_id": A, "open": 0, "at_risk": 0, "breached": 0},
    ]
    assert live.live_report([], T0, {}, mall_id=A, malls=(A, B))["by_mall"] == [
        {"mall_id": A, "open": 0, "at_risk": 0, "breached": 0}
    ]


def test_nothing_running_is_all_zero():
    empty = live.live_report([], T0, {"resolution": 0.8})
    assert (empty["open"], empty["at_risk"], empty["breached"], empty["by_stage"], empty["by_mall"]) == (
        0,
        0,
        0,
        [],
        [],
    )


def test_the_shares_answered_are_the_policys():
    with open(POLICY_DIR / "analytics.yml", encoding="utf-8") as handle:
        policy = load_policy(yaml.safe_load(handle), load_registry_file(POLICY_DIR / "malls.yml"))
    shares = {name: policy.at_risk_share(name) for name in CLOCKS}
    assert shares["acknowledgement"] == 0.5 and shares["resolution"] == 0.8
    assert live.live_report([], T0, shares)["at_risk_share"] == shares
