"""Issue 23 on the real broker and store: staff tokens are verified with the sign-on's public
keys, which rotate without a restart; a service's or a subscriber's credential cannot act as
staff; every refused sign-in leaves an audit record."""

import json
import logging
import time

import jwt
import pytest
from nameko.exceptions import RemoteError

from mallcare_cli.examples import desk_complaint
from mallcare_common.auth import SigningKey, issue_token, new_signing_key, write_jwks
from tests.helpers import SERVICE_KEYS, SIGNING_KEY, api_key, jwks_of, sampled, settle_at_desk, staff, wait_for

DESK = staff("D3001")
LOYALTY = {**api_key("loyalty-points"), "Authorization": None}
# a list each service answers its staff with
LISTS = {
    "intake": "/complaints?mall_id=sh-xujiahui",
    "triage": "/queue?mall_id=sh-xujiahui",
    "resolution": "/cases?mall_id=sh-xujiahui",
    "feedback": "/revisits?mall_id=sh-xujiahui",
    "analytics": "/reports/intake?mall_id=sh-xujiahui",
    "notify": "/messages/failed?mall_id=sh-xujiahui",
}


def refusals_counted(system, service, credential, reason):
    """The refused sign-ins `service` counts (its /metrics) of this credential and reason. The
    services of a session share one registry: compare with a count taken before."""
    return sampled(
        system.web[service].base,
        "mallcare_sign_ins_refused_total",
        service=service,
        credential=credential,
        reason=reason,
    )


def signed(key, user="E3091", role="store_manager", malls=("sh-xujiahui",)):
    return {"Authorization": "Bearer " + issue_token(SigningKey(key), user, role, malls)}


def answers(system, headers):
    """Each service's status for one of its lists, with these credentials."""
    return {name: system.web[name].get(path, headers=headers).status_code for name, path in LISTS.items()}


def test_a_rotation_of_the_sign_ons_key_keeps_every_service_answering(services, tmp_path):
    jwks = str(tmp_path / "jwks.json")
    write_jwks(jwks, jwks_of(SIGNING_KEY, *SERVICE_KEYS.values()))
    system = services(settings={name: {"JWKS": jwks} for name in LISTS})  # read again as soon as it changes
    old = signed(SIGNING_KEY)
    assert answers(system, old) == dict.fromkeys(LISTS, 200)

    # 1. the new key's public half joins the JWKS: both keys' tokens are taken, at once, everywhere
    fresh_key = new_signing_key("sign-on", "rotated")
    write_jwks(jwks, jwks_of(SIGNING_KEY, fresh_key, *SERVICE_KEYS.values()))
    fresh = signed(fresh_key)
    wait_for(lambda: answers(system, fresh) == dict.fromkeys(LISTS, 200), timeout=3)  # its status: once a second
    assert answers(system, old) == dict.fromkeys(LISTS, 200)
    # 2. the sign-on signs with the new key; the chain goes on, its services calling each other
    with system.case_opened():
        registered = system.web["intake"].post(
            "/complaints", json=desk_complaint(), headers=signed(fresh_key, "D3001", "desk_staff")
        )
    number = registered.json()["number"]
    settle_at_desk(system, number, signed(fresh_key, "D3001", "desk_staff"))
    status = system.web["intake"].post(
        "/portal/status",
        data={"number": number, "phone": "13812345678"},
        headers={"Authorization": None},  # a customer: no credential
    )
    assert (
        status.status_code == 200 and "部分进度暂时无法显示" not in status.text
    )  # intake read the case from resolution

    # 3. the old key leaves the JWKS: its tokens are refused everywhere within the max age, the new ones stay
    write_jwks(jwks, jwks_of(fresh_key, *SERVICE_KEYS.values()))
    wait_for(lambda: answers(system, old) == dict.fromkeys(LISTS, 401), timeout=3)
    assert answers(system, fresh) == dict.fromkeys(LISTS, 200)


def test_a_services_or_a_subscribers_credential_is_refused_by_the_staff_endpoints(system, caplog):
    with system.case_opened():
        sh = system.web["intake"].post("/complaints", json=desk_complaint(), headers=DESK).json()["number"]
    with system.case_opened():
        registered = system.web["intake"].post(
            "/complaints",
            json=desk_complaint(mall_id="gz-tianhe", channel_ref="gz-1", location={"area": "fresh produce"}),
        )
        assert registered.status_code == 201, registered.text
    gz = registered.json()["number"]
    notify_key = SERVICE_KEYS["SERVICE_KEY_NOTIFY"]
    # notify's own key, with the claims of a chain admin: still notify, with notify's scopes only
    as_admin = signed(notify_key, "service:notify", "admin", ["*"])
    staff_only = [
        ("post", "resolution", f"/cases/{sh}/notes", {"kind": "internal", "text": "as admin?"}),
        ("post", "intake", "/complaints", desk_complaint()),
        ("get", "intake", "/audit?mall_id=sh-xujiahui", None),
        ("get", "analytics", "/reports/intake", None),
        ("post", "triage", "/policy/reload", None),
    ]
    for method, service, path, body in staff_only:
        refused = getattr(system.web[service], method)(path, json=body, headers=as_admin)
        assert (refused.status_code, refused.json()["error"]) == (403, "FORBIDDEN"), (service, path, refused.text)
    # a staff member's token signed with a service's key, or with a subscriber's secret as HS256
    caplog.set_level(logging.WARNING, logger="mallcare.audit")
    before = refusals_counted(system, "resolution", "bearer", "invalid")
    for forged in (
        signed(notify_key, "A0001", "admin", ["*"]),
        {
            "Authorization": "Bearer "
            + jwt.encode(
                {"iss": "mallcare", "sub": "A0001", "role": "admin", "malls": ["*"], "exp": int(time.time()) + 600},
                "secret-of-loyalty-points",
                algorithm="HS256",
                headers={"kid": "sign-on@tests"},
            )
        },
    ):
        for service in LISTS:
            assert system.web[service].get(LISTS[service], headers=forged).status_code == 401, service
    assert refusals_counted(system, "resolution", "bearer", "invalid") == before + 2
    records = [r for r in caplog.records if getattr(r, "audit", None) == "sign_in_refused"]
    assert {r.service for r in records} == set(LISTS)
    assert all(r.credential == "bearer" and r.address == "127.0.0.1" for r in records)
    # the loyalty subscriber reads cases at its two malls, and nothing else
    assert system.web["resolution"].get(f"/cases/{sh}", headers=LOYALTY).status_code == 200
    assert system.web["resolution"].get(f"/cases/{gz}", headers=LOYALTY).status_code == 403
    for service, path in (("intake", f"/complaints/{sh}"), ("triage", f"/assessments/{sh}"), ("feedback", "/library")):
        assert system.web[service].get(path, headers=LOYALTY).status_code == 403, service
    acted = system.web["resolution"].post(f"/cases/{sh}/notes", json={"kind": "internal", "text": "x"}, headers=LOYALTY)
    assert acted.status_code == 403
    # a wrong subscriber key: refused, and audited as an API key
    wrong = {"X-Api-Key": "loyalty-points.guessed", "Authorization": None}
    assert system.web["resolution"].get(f"/cases/{sh}", headers=wrong).status_code == 401
    assert refusals_counted(system, "resolution", "api_key", "unknown_key") >= 1


def test_every_refused_sign_in_is_an_audit_record_with_the_clients_address(system, caplog):
    """None where one is needed (refused before a body is read), a forged key, an RPC call
    without a credential: each a `mallcare.audit` record and a count, with no token in it."""
    caplog.set_level(logging.WARNING, logger="mallcare.audit")
    intake = system.web["intake"]
    before = refusals_counted(system, "intake", "none", "missing")  # one registry a session: the count before this test
    missing = intake.post("/complaints", json=desk_complaint(), headers={"Authorization": None})
    assert missing.status_code == 401
    forwarded = intake.get(
        "/complaints", headers={"Authorization": "Bearer forged.token.x", "X-Forwarded-For": "203.0.113.9"}
    )
    assert forwarded.status_code == 401
    with system.rpc() as anonymous:
        with pytest.raises(RemoteError):
            anonymous.intake.get_complaint("SHXJH-20261206-0001")
    records = [r.__dict__ for r in caplog.records if getattr(r, "audit", None) == "sign_in_refused"]
    shown = [(r["service"], r["credential"], r["reason"], r["path"], r.get("address")) for r in records]
    assert shown == [
        ("intake", "none", "missing", "/complaints", "127.0.0.1"),
        ("intake", "bearer", "malformed", "/complaints", "127.0.0.1"),  # FORWARDED_HOPS 0: the peer
        ("intake", "none", "missing", "rpc", None),
    ]
    assert records[1]["forwarded_for"] == "203.0.113.9"
    assert not any("forged.token" in json.dumps(r, default=str) for r in records)
    assert refusals_counted(system, "intake", "none", "missing") == before + 2
