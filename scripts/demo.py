"""Helpers for scripts/run.sh: wait for a health URL; submit one demo complaint, show
it travel intake -> triage -> resolution, work its case to resolved as handler E3501
(the seeds' strawberry case), record the customer's answer on the revisit, and show
the case's timeline and analytics' counts."""
import json
import random
import sys
import time
import uuid

import requests

from intake.examples import desk_complaint

INTAKE, TRIAGE, RESOLUTION, FEEDBACK, ANALYTICS = ("http://127.0.0.1:8001", "http://127.0.0.1:8002",
                                                   "http://127.0.0.1:8003", "http://127.0.0.1:8004",
                                                   "http://127.0.0.1:8005")
HANDLER = {"X-Staff-Id": "E3501"}


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


def poll(url, seconds=15):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = requests.get(url, timeout=5)
        if response.ok:
            return response.json()
        time.sleep(0.3)
    return None


def complaint():
    body = desk_complaint(
        channel_ref=f"demo-{uuid.uuid4().hex[:8]}",
        customer={"name": "王女士", "phone": f"138{random.randrange(10**8):08d}", "member_tier": "gold"},
        description="上午买的草莓有三分之一发霉了")
    print("\n$ curl -X POST http://127.0.0.1:8001/complaints -H 'Content-Type: application/json' -d @demo.json")
    response = requests.post(f"{INTAKE}/complaints", json=body, timeout=10)
    registered = response.json()
    print(response.status_code, json.dumps({k: registered.get(k) for k in (
        "number", "status", "mall_id", "channel", "received_at", "ack_due_at")}, ensure_ascii=False, indent=2))
    number = registered["number"]
    assessment = poll(f"{TRIAGE}/assessments/{number}")
    print(f"\n$ curl http://127.0.0.1:8002/assessments/{number}\n"
          + (json.dumps(assessment, ensure_ascii=False, indent=2) if assessment else "not at triage yet"))
    case = poll(f"{RESOLUTION}/cases/{number}")
    if case:
        work_case(number)
        revisit = poll(f"{FEEDBACK}/revisits/{number}-R1")
        if revisit:
            revisit_customer(number, revisit)
    print(f"\n$ curl {ANALYTICS}/reports/intake\n"
          + json.dumps(requests.get(f"{ANALYTICS}/reports/intake", timeout=5).json(), ensure_ascii=False))
    return 0 if assessment and case else 1


def work_case(number):
    """The handler's side of R3: findings, an answer within their authority, execution, resolution."""
    def act(action, **body):
        print(f"$ curl -X POST {RESOLUTION}/cases/{number}/{action} -H 'X-Staff-Id: E3501' -d '"
              + json.dumps(body, ensure_ascii=False) + "'")
        answer = requests.post(f"{RESOLUTION}/cases/{number}/{action}", json=body, headers=HANDLER, timeout=10)
        answer.raise_for_status()
        return answer.json()

    print()
    act("findings", source="cctv", summary="camera 12: the box was weighed and sold this morning")
    act("proposals", decision="upheld", price="39.90", demanded_amount="79.80",
        reasons=["a third of the fruit was mouldy", "refund plus the same value in goods is fair"],
        remedies=[{"type": "refund", "amount": "39.90"}, {"type": "voucher", "amount": "39.90"}])
    act("reply", proposal_no=1, oral=True)
    case = act("acceptance", proposal_no=1)
    for task in case["tasks"]:
        act("task-done", task_id=task["id"], note=f"{task['kind']} done")
    case = act("resolution", summary="refunded, voucher sent, batch off the shelf")
    print(f"\n$ curl {RESOLUTION}/cases/{number}/timeline")
    for entry in case["timeline"]:
        print(f"  {entry['seq']:>2} {entry['at'][11:19]} {entry['by']:<8} {entry['action']:<18} -> {entry['state']}")


def revisit_customer(number, revisit):
    """R4.1: the revisit feedback scheduled; the customer says they are satisfied and the case closes."""
    print(f"\n$ curl {FEEDBACK}/revisits/{revisit['revisit_id']}")
    print(json.dumps({k: revisit[k] for k in ("revisit_id", "status", "way", "contact_masked", "scheduled_at",
                                              "due_at")}, ensure_ascii=False, indent=2))
    body = {"outcome": "reached", "score": 5, "comment": "处理得很快"}
    print(f"$ curl -X POST {FEEDBACK}/revisits/{revisit['revisit_id']}/attempts -H 'X-Staff-Id: E3002' -d '"
          + json.dumps(body, ensure_ascii=False) + "'")
    requests.post(f"{FEEDBACK}/revisits/{revisit['revisit_id']}/attempts", json=body,
                  headers={"X-Staff-Id": "E3002"}, timeout=10).raise_for_status()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        case = requests.get(f"{RESOLUTION}/cases/{number}", timeout=5).json()
        if case["state"] == "closed":
            break
        time.sleep(0.3)
    print(f"$ curl {RESOLUTION}/cases/{number}   ->  state: {case['state']}, closure: "
          + json.dumps(case["closure"], ensure_ascii=False))


if __name__ == "__main__":
    sys.exit(wait(sys.argv[2]) if sys.argv[1] == "wait" else complaint())
