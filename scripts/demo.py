"""Helpers for scripts/run.sh: wait for a health URL; submit one demo complaint and
show it travel intake -> triage -> analytics."""
import json
import random
import sys
import time
import uuid

import requests

from intake.examples import desk_complaint

INTAKE, TRIAGE, ANALYTICS = "http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8005"


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
    print(f"\n$ curl http://127.0.0.1:8005/reports/intake\n"
          + json.dumps(requests.get(f"{ANALYTICS}/reports/intake", timeout=5).json(), ensure_ascii=False))
    return 0 if assessment else 1


if __name__ == "__main__":
    sys.exit(wait(sys.argv[2]) if sys.argv[1] == "wait" else complaint())
