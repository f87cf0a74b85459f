"""Helpers for scripts/run.sh: wait for a health URL; submit one demo complaint, show
it travel intake -> triage -> resolution, work its case to resolved as handler E3501
(the seeds' strawberry case), record the customer's answer on the revisit, and show
the case's timeline and analytics' counts. Every call is signed in: staff tokens
made with the TOKEN_SECRET of the secrets file run.sh wrote (MALLCARE_SECRETS_FILE)."""

import json
import random
import sys
import time
import uuid

import requests

from mallcare_cli.examples import desk_complaint
from mallcare_common.auth import issue_token, read_secret

INTAKE, TRIAGE, RESOLUTION, FEEDBACK, ANALYTICS = (
    "http://127.0.0.1:8001",
    "http://127.0.0.1:8002",
    "http://127.0.0.1:8003",
    "http://127.0.0.1:8004",
    "http://127.0.0.1:8005",
)


def signed_in(user, role, malls=("sh-xujiahui",)):
    return {"Authorization": "Bearer " + issue_token(read_secret({}, "TOKEN_SECRET"), user, role, malls)}


AUTH = '-H "Authorization: Bearer $TOKEN"'  # as the curl lines show it


def wait(url, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).ok:
                return 0
        except requests.RequestException:
            pass
        time.sleep(0.3)
    return 1


def poll(url, headers, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = requests.get(url, headers=headers, timeout=5)
        if response.ok:
            return response.json()
        time.sleep(0.3)
    return None


def complaint():
    body = desk_complaint(
        channel_ref=f"demo-{uuid.uuid4().hex[:8]}",
        customer={"name": "王女士", "phone": f"138{random.randrange(10**8):08d}", "member_tier": "gold"},
        description="上午买的草莓有三分之一发霉了",
    )
    desk, handler = signed_in("D3001", "desk_staff"), signed_in("E3501", "handler")
    print(
        f"\n$ curl -X POST http://127.0.0.1:8001/complaints {AUTH} -H 'Content-Type: application/json' -d @demo.json"
        "   # TOKEN: desk staff D3001"
    )
    response = requests.post(f"{INTAKE}/complaints", json=body, headers=desk, timeout=10)
    registered = response.json()
    print(
        response.status_code,
        json.dumps(
            {k: registered.get(k) for k in ("number", "status", "mall_id", "channel", "received_at", "ack_due_at")},
            ensure_ascii=False,
            indent=2,
        ),
    )
    number = registered["number"]
    assessment = poll(f"{TRIAGE}/assessments/{number}", handler)
    print(
        f"\n$ curl {AUTH} http://127.0.0.1:8002/assessments/{number}\n"
        + (json.dumps(assessment, ensure_ascii=False, indent=2) if assessment else "not at triage yet")
    )
    case = poll(f"{RESOLUTION}/cases/{number}", handler)
    if case:
        work_case(number, handler)
        revisit = poll(f"{FEEDBACK}/revisits/{number}-R1", handler)
        if revisit:
            revisit_customer(number, revisit, handler)
    analyst = signed_in("A7001", "analyst", ["*"])
    print(
        f"\n$ curl {AUTH} {ANALYTICS}/reports/intake   # TOKEN: chain analyst A7001\n"
        + json.dumps(requests.get(f"{ANALYTICS}/reports/intake", headers=analyst, timeout=5).json(), ensure_ascii=False)
    )
    return 0 if assessment and case else 1


def work_case(number, handler):
    """The handler's side of R3: findings, an answer within their authority, execution, resolution."""

    def act(action, **body):
        print(
            f"$ curl -X POST {RESOLUTION}/cases/{number}/{action} {AUTH} -d '"
            + json.dumps(body, ensure_ascii=False)
            + "'   # TOKEN: handler E3501"
        )
        answer = requests.post(f"{RESOLUTION}/cases/{number}/{action}", json=body, headers=handler, timeout=10)
        answer.raise_for_status()
        return answer.json()

    print()
    act("findings", source="cctv", summary="camera 12: the box was weighed and sold this morning")
    act(
        "proposals",
        decision="upheld",
        price="39.90",
        demanded_amount="79.80",
        reasons=["a third of the fruit was mouldy", "refund plus the same value in goods is fair"],
        remedies=[{"type": "refund", "amount": "39.90"}, {"type": "voucher", "amount": "39.90"}],
    )
    act("reply", proposal_no=1, oral=True)
    case = act("acceptance", proposal_no=1)
    for task in case["tasks"]:
        act("task-done", task_id=task["id"], note=f"{task['kind']} done")
    case = act("resolution", summary="refunded, voucher sent, batch off the shelf")
    print(f"\n$ curl {AUTH} {RESOLUTION}/cases/{number}/timeline")
    for entry in case["timeline"]:
        print(f"  {entry['seq']:>2} {entry['at'][11:19]} {entry['by']:<8} {entry['action']:<18} -> {entry['state']}")


def revisit_customer(number, revisit, handler):
    """R4.1: the revisit feedback scheduled; the customer says they are satisfied and the case closes."""
    print(f"\n$ curl {AUTH} {FEEDBACK}/revisits/{revisit['revisit_id']}")
    print(
        json.dumps(
            {k: revisit[k] for k in ("revisit_id", "status", "way", "contact_masked", "scheduled_at", "due_at")},
            ensure_ascii=False,
            indent=2,
        )
    )
    body = {"outcome": "reached", "score": 5, "comment": "处理得很快"}
    print(
        f"$ curl -X POST {FEEDBACK}/revisits/{revisit['revisit_id']}/attempts {AUTH} -d '"
        + json.dumps(body, ensure_ascii=False)
        + "'   # TOKEN: handler E3002"
    )
    requests.post(
        f"{FEEDBACK}/revisits/{revisit['revisit_id']}/attempts",
        json=body,
        headers=signed_in("E3002", "handler"),
        timeout=10,
    ).raise_for_status()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        case = requests.get(f"{RESOLUTION}/cases/{number}", headers=handler, timeout=5).json()
        if case["state"] == "closed":
            break
        time.sleep(0.3)
    print(
        f"$ curl {AUTH} {RESOLUTION}/cases/{number}   ->  state: {case['state']}, closure: "
        + json.dumps(case["closure"], ensure_ascii=False)
    )


if __name__ == "__main__":
    sys.exit(wait(sys.argv[2]) if sys.argv[1] == "wait" else complaint())
