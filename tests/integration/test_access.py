"""R6.1 on the real broker and store: every HTTP and RPC call names its caller and is
checked against the caller's role and malls. A handler of one mall cannot read or act
on another mall's complaints anywhere in the chain; signed-out, forged and expired
credentials get 401; channel keys submit for their own mall and channel only and are
rate limited (429 with Retry-After); an analyst sees the chain's aggregates but no
complaint; every list defaults to the caller's mall; a credential sent over RPC never
travels on with the events it causes."""

import json
import time
from datetime import timedelta

import jwt

import pytest
from nameko.exceptions import RemoteError

from mallcare_cli.examples import desk_complaint
from tests.helpers import SIGN_ON, api_key, bearer, handled, settle_at_desk, staff, wait_for

SH_DESK, SH_HANDLER, BJ_HANDLER, SH_MANAGER = staff("D3001"), staff("E3501"), staff("E4001"), staff("E3091")
ANALYST = bearer("A7001", "analyst", ["*"])
SIGNED_OUT = {"Authorization": None}


def register(system, headers=None, **complaint):
    response = system.web["intake"].post("/complaints", json=desk_complaint(**complaint), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["number"]


def spot_resolved(system):
    """A Shanghai complaint, settled at the desk, with its case and revisit."""
    with system.case_opened():
        number = register(system, headers=SH_DESK)
    settle_at_desk(system, number, SH_DESK)
    return number


def test_a_handler_of_another_mall_can_neither_read_nor_act_on_the_complaint_anywhere(system):
    number = spot_resolved(system)
    web = system.web
    reads = [
        ("intake", f"/complaints/{number}"),
        ("triage", f"/assessments/{number}"),
        ("resolution", f"/cases/{number}"),
        ("resolution", f"/cases/{number}/timeline"),
        ("feedback", f"/revisits/{number}-R1"),
        ("analytics", f"/clocks/{number}"),
    ]
    for service, path in reads:
        assert web[service].get(path, headers=SH_HANDLER).status_code == 200, (service, path)
        refused = web[service].get(path, headers=BJ_HANDLER)
        assert (refused.status_code, refused.json()["error"]) == (403, "FORBIDDEN"), (service, path)
    writes = [
        ("resolution", f"/cases/{number}/notes", {"kind": "internal", "text": "seen"}),
        ("intake", f"/complaints/{number}/acknowledgement", {"method": "phone"}),
        ("feedback", f"/revisits/{number}-R1/attempts", {"outcome": "reached", "score": 1}),
    ]
    for service, path, body in writes:
        assert web[service].post(path, json=body, headers=BJ_HANDLER).status_code == 403, (service, path)
    assert web["resolution"].get(f"/cases/{number}", headers=SH_HANDLER).json()["state"] == "resolved"
    assert web["feedback"].get(f"/revisits/{number}-R1", headers=SH_HANDLER).json()["status"] != "answered"
    # lists: their own mall by default, another mall refused
    assert web["intake"].get("/complaints", headers=BJ_HANDLER).json()["total"] == 0
    assert web["intake"].get("/complaints", headers=SH_HANDLER).json()["total"] == 1
    for service, path in (
        ("intake", "/complaints"),
        ("resolution", "/cases"),
        ("triage", "/queue"),
        ("feedback", "/revisits"),
        ("resolution", "/rectifications"),
    ):
        assert web[service].get(path, params={"mall_id": "sh-xujiahui"}, headers=BJ_HANDLER).status_code == 403


def test_every_list_defaults_to_the_callers_mall_and_a_chain_wide_caller_sees_the_chain(system):
    number = spot_resolved(system)  # a Shanghai case with its revisit
    web = system.web
    task = web["resolution"].post(
        f"/cases/{number}/rectifications",
        headers=SH_HANDLER,
        json={"kind": "training", "description": "称重台每日校准", "owner_id": "E3501"},
    )
    assert task.status_code == 200, task.text
    reported = {}
    for mall, reporter in (("sh-xujiahui", SH_HANDLER), ("bj-chaoyang", BJ_HANDLER)):
        incident = web["resolution"].post(
            "/incidents",
            headers=reporter,
            json={
                "mall_id": mall,
                "type": "injury",
                "occurred_at": "2026-11-01T10:00:00+08:00",
                "place": {"area": "一楼生鲜区"},
                "description": "滑倒",
                "customer": {"phone": "13900001111"},
                "suggested_handling": "陪同就医",
            },
        )
        assert incident.status_code == 201, incident.text
        reported[mall] = incident.json()["number"]

    def listed(service, path, key, headers):
        answer = web[service].get(path, headers=headers)
        assert answer.status_code == 200, (path, answer.text)
        return sorted({item[key] for item in answer.json()["items"]})  # a case may have several tasks

    lists = (
        ("feedback", "/revisits", "revisit_id"),
        ("resolution", "/rectifications", "complaint_no"),
        ("resolution", "/incidents", "number"),
    )
    shanghai = {"/revisits": [f"{number}-R1"], "/rectifications": [number], "/incidents": [reported["sh-xujiahui"]]}
    for service, path, key in lists:
        assert listed(service, path, key, SH_HANDLER) == shanghai[path], path
        assert not set(listed(service, path, key, BJ_HANDLER)) & set(shanghai[path]), path  # none of Shanghai's
        # staff of several malls name one, as for /cases
        assert web[service].get(path, headers=staff("R7001")).status_code == 422, path
    assert listed("resolution", "/incidents", "number", BJ_HANDLER) == [reported["bj-chaoyang"]]
    chain = bearer("E0901", "operations_director", ["*"])
    assert listed("resolution", "/incidents", "number", chain) == sorted(reported.values())
    assert listed("feedback", "/revisits", "revisit_id", chain) == [f"{number}-R1"]


def test_signed_out_forged_and_expired_credentials_get_401_everywhere(system):
    forged = bearer("E3501", "admin", ["*"])["Authorization"][:-6] + "AAAAAA"
    expired = bearer(role="admin", lifetime=-timedelta(hours=1))["Authorization"]
    other_secret = "Bearer " + jwt.encode(
        {"iss": "mallcare", "sub": "X", "role": "admin", "malls": ["*"], "exp": int(time.time()) + 600},
        "a-shared-secret-of-at-least-32-bytes",
        algorithm="HS256",
        headers={"kid": SIGN_ON.kid},  # the sign-on's key id, but HS256: never accepted
    )
    paths = {
        "intake": "/complaints",
        "triage": "/queue",
        "resolution": "/cases",
        "feedback": "/library",
        "analytics": "/reports/intake",
    }
    for service, path in paths.items():
        for headers in (
            SIGNED_OUT,
            {"Authorization": forged},
            {"Authorization": expired},
            {"Authorization": other_secret},
            {"Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="},
        ):
            response = system.web[service].get(path, headers=headers)
            assert response.status_code == 401, (service, headers, response.text)
            assert response.json()["error"] == "UNAUTHENTICATED"
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert system.web[service].get(path).status_code == 200  # the default test caller: a chain admin
    assert "expired" in system.web["intake"].get("/complaints", headers={"Authorization": expired}).text
    # a body is read for signed-in callers only: a signed-out one is told to sign in, not what is wrong with it
    broken = system.web["intake"].post("/complaints", data=b'{"channel": ', headers=SIGNED_OUT)
    assert broken.status_code == 401 and broken.json()["error"] == "UNAUTHENTICATED"
    # health and metrics stay open to load balancers and Prometheus
    assert system.web["intake"].get("/health", headers=SIGNED_OUT).status_code == 200
    assert system.web["intake"].get("/metrics", headers=SIGNED_OUT).status_code == 200


def test_a_channel_key_submits_for_its_own_mall_and_channel_only(system):
    intake = system.web["intake"]
    key = {**api_key("wechat-sh"), **SIGNED_OUT}
    wechat = dict(channel="wechat", mall_id="sh-xujiahui", channel_ref="wx-0001")
    number = register(system, headers=key, **wechat)
    assert intake.get(f"/complaints/{number}", headers=key).json()["channel"] == "wechat"
    acknowledged = intake.post(f"/complaints/{number}/acknowledgement", json={"method": "auto_reply"}, headers=key)
    assert acknowledged.json()["acknowledgement"]["acknowledged_by"] == "key:wechat-sh"
    for other in ({**wechat, "mall_id": "bj-chaoyang"}, {**wechat, "channel": "app"}):
        refused = intake.post("/complaints", json=desk_complaint(**other), headers=key)
        assert refused.status_code == 403, other
    wrong_secret = {"X-Api-Key": "wechat-sh.guessed", **SIGNED_OUT}
    assert intake.post("/complaints", json=desk_complaint(**wechat), headers=wrong_secret).status_code == 401
    assert (
        intake.post(
            "/complaints", json=desk_complaint(**wechat), headers={"X-Api-Key": "nobody.x", **SIGNED_OUT}
        ).status_code
        == 401
    )
    # a key is for submitting: it reads no assessment, case or report
    assert system.web["triage"].get(f"/assessments/{number}", headers=key).status_code == 403
    assert system.web["triage"].get("/assessments/SHXJH-20261123-9999", headers=key).status_code == 403  # none such
    assert system.web["analytics"].get("/reports/intake", headers=key).status_code == 403
    # a channel reference another mall used is not handed back to this mall's caller
    bj_number = register(
        system,
        headers={**api_key("app-bj"), **SIGNED_OUT},
        channel="app",
        mall_id="bj-chaoyang",
        channel_ref="shared-ref",
    )
    taken = intake.post("/complaints", json=desk_complaint(channel="app", channel_ref="shared-ref"), headers=SH_DESK)
    assert taken.status_code == 409 and bj_number not in taken.text


def test_a_key_over_its_rate_gets_429_with_retry_after_and_nothing_is_registered(system):
    intake, key = system.web["intake"], {**api_key("hotline-sh-slow"), **SIGNED_OUT}  # 3 a minute
    answers = [
        intake.post("/complaints", headers=key, json=desk_complaint(channel="hotline", channel_ref=f"h-{i}"))
        for i in range(5)
    ]
    assert [a.status_code for a in answers] == [201, 201, 201, 429, 429]
    assert answers[3].json()["error"] == "TOO_MANY_REQUESTS" and 1 <= int(answers[3].headers["Retry-After"]) <= 20
    assert intake.get("/complaints", params={"channel": "hotline"}).json()["total"] == 3
    # other keys and staff are not held back by this key's rate
    assert register(system, headers={**api_key("wechat-sh"), **SIGNED_OUT}, channel="wechat", channel_ref="wx-9")


def test_an_analyst_sees_the_chains_aggregates_and_a_store_manager_only_their_mall(system):
    with handled(system.containers["analytics"], "handle_complaint_registered"):
        number = register(system, headers=SH_DESK)
    analytics = system.web["analytics"]
    chain = analytics.get("/reports/monthly", params={"period": "2026-11"}, headers=ANALYST)
    assert chain.status_code == 200 and chain.json()["mall_id"] is None
    assert (
        analytics.get(
            "/reports/monthly", params={"period": "2026-11", "mall_id": "gz-tianhe"}, headers=ANALYST
        ).status_code
        == 200
    )
    assert system.web["intake"].get(f"/complaints/{number}", headers=ANALYST).status_code == 403
    assert system.web["resolution"].get("/cases", headers=ANALYST).status_code == 403
    own = analytics.get("/reports/monthly", params={"period": "2026-11"}, headers=SH_MANAGER)
    assert own.status_code == 200 and own.json()["mall_id"] == "sh-xujiahui"  # not the chain's
    assert (
        analytics.get(
            "/reports/monthly", params={"period": "2026-11", "mall_id": "bj-chaoyang"}, headers=SH_MANAGER
        ).status_code
        == 403
    )
    assert analytics.get("/reports/monthly", params={"period": "2026-11"}, headers=SH_HANDLER).status_code == 403
    # policy: read for the analyst, reload for the admin only
    assert analytics.get("/policy", headers=ANALYST).status_code == 200
    assert analytics.post("/policy/reload", headers=ANALYST).status_code == 403
    assert analytics.post("/policy/reload").status_code == 200


def test_rpc_checks_the_caller_and_never_passes_the_credential_on_with_events(system):
    queue = system.catch_all("resolution")["resolution"]
    with system.case_opened():
        number = register(system, headers=SH_DESK)
    with system.rpc() as anonymous:
        with pytest.raises(RemoteError) as refused:
            anonymous.resolution.get_case(number)
        assert refused.value.exc_type == "Unauthenticated"
    with system.rpc(BJ_HANDLER) as stranger:
        with pytest.raises(RemoteError) as refused:
            stranger.resolution.act(number, "notes", {"kind": "internal", "text": "not my mall"})
        assert refused.value.exc_type == "Forbidden"
        with pytest.raises(RemoteError):
            stranger.intake.get_complaint(number)
    token = SH_HANDLER["Authorization"]
    with system.rpc(SH_HANDLER) as handler:
        case = handler.resolution.act(number, "findings", {"source": "cctv", "summary": "seen", "by": "E3901"})
    assert case["state"] == "investigating" and case["timeline"][-1]["by"] == "E3501"  # who signed in, not the body
    messages = []
    wait_for(
        lambda: (
            messages.extend(iter(lambda: queue.get(no_ack=True), None))
            or any(json.loads(m.body)["event_type"] == "investigation_noted" for m in messages)
        )
    )
    assert messages and all(token.split(" ")[1] not in json.dumps(m.headers, default=str) for m in messages)
    assert all("authorization" not in json.dumps(m.headers, default=str).lower() for m in messages)
