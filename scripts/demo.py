"""Helpers for scripts/run.sh: wait for a health URL; submit one demo complaint, show
it travel intake -> triage -> resolution, work its case to resolved as handler E3501
(the seeds' strawberry case), record the customer's answer on the revisit, and show
the case's timeline and analytics' counts. Every call is signed in: staff tokens
made with the sign-on's SIGNING_KEY of the secrets file run.sh wrote (MALLCARE_SECRETS_FILE,
by default .run/secrets.yml, as run.sh's: `demo.py wechat` is run by hand from another shell).

`python scripts/demo.py wechat [text]` plays WeChat's server: a customer's text message to
sh-xujiahui's official account, posted to intake's callback signed with the account's
token (WECHAT_TOKEN_SH_XUJIAHUI, which run.sh put in the secrets file); it shows intake's
passive reply and the acknowledgement notify then sent through the WeChat API stand-in."""

import json
import os
import random
import re
import secrets
import string
import sys
import time
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import requests
import yaml

from intake.wechat import signature
from mallcare_cli.examples import desk_complaint
from mallcare_common.auth import SigningKey, issue_token, read_secret

INTAKE, TRIAGE, RESOLUTION, FEEDBACK, ANALYTICS, NOTIFY = (
    "http://127.0.0.1:8001",
    "http://127.0.0.1:8002",
    "http://127.0.0.1:8003",
    "http://127.0.0.1:8004",
    "http://127.0.0.1:8005",
    "http://127.0.0.1:8007",
)
STANDINS = "http://127.0.0.1:8090"
ROOT = Path(__file__).resolve().parent.parent
POLICY_DIR = ROOT / "deploy" / "policy"


def signed_in(user, role, malls=("sh-xujiahui",)):
    return {"Authorization": "Bearer " + issue_token(SigningKey(read_secret({}, "SIGNING_KEY")), user, role, malls)}


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


def wechat(text="你们超市卖的草莓有三分之一是烂的，我要退款"):
    """A customer's WeChat message to sh-xujiahui's account, as WeChat's server posts it."""
    mall = "sh-xujiahui"
    account = yaml.safe_load((POLICY_DIR / "intake.yml").read_text(encoding="utf-8"))["wechat"][mall]
    token = read_secret({}, account["token"])
    # A new customer each time (an OpenID is 28 characters): the same text from the same
    # customer within a day would be a duplicate.
    openid = "oDemo" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(23))
    timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
    query = {"signature": signature(token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, "openid": openid}
    message = ElementTree.Element("xml")
    for tag, value in {
        "ToUserName": account["account"],
        "FromUserName": openid,
        "CreateTime": timestamp,
        "MsgType": "text",
        "Content": text,
        "MsgId": str(secrets.randbelow(10**17)),
    }.items():
        ElementTree.SubElement(message, tag).text = value
    url = f"{INTAKE}/channels/wechat/{mall}"
    print(f"$ POST {url}?signature=...&timestamp={timestamp}&nonce={nonce}&openid={openid}   (as WeChat's server)")
    print(f"  a text message from {openid} to {account['account']}: {text}")
    answer = requests.post(url, params=query, data=ElementTree.tostring(message, encoding="utf-8"), timeout=10)
    if not answer.ok:
        print(f"{answer.status_code} {answer.text}")
        return 1
    shown = ElementTree.fromstring(answer.content).findtext("Content")
    print(f"{answer.status_code}, the passive reply the customer sees at once: {shown}")
    number = re.search(r"[A-Z0-9]+-\d{8}-\d+", shown)[0]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        sent = [m for m in requests.get(f"{STANDINS}/_sent", timeout=5).json() if m["to"] == openid]
        if sent:
            print(f"\nnotify's acknowledgement through the WeChat API stand-in ({STANDINS}/ lists it):")
            print(f"  to {openid}: {sent[0]['text']}")
            acknowledged = poll_acknowledgement(number)
            print(f"$ curl {AUTH} {INTAKE}/complaints/{number}   ->  acknowledgement: {acknowledged}")
            print(f"  notify's record: {NOTIFY}/messages?complaint_no={number}")
            return 0
        time.sleep(0.3)
    print(f"no WeChat message reached the stand-in within 15 s: see {NOTIFY}/messages/failed and .run/logs/notify.log")
    return 1


def poll_acknowledgement(number):
    desk = signed_in("D3001", "desk_staff")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        acknowledgement = requests.get(f"{INTAKE}/complaints/{number}", headers=desk, timeout=5).json()[
            "acknowledgement"
        ]
        if acknowledgement:
            return json.dumps(acknowledgement, ensure_ascii=False)
        time.sleep(0.3)
    return "none yet"


if __name__ == "__main__":
    os.environ.setdefault("MALLCARE_SECRETS_FILE", str(ROOT / ".run" / "secrets.yml"))
    command = sys.argv[1]
    if command == "wait":
        sys.exit(wait(sys.argv[2]))
    sys.exit(wechat(*sys.argv[2:3]) if command == "wechat" else complaint())
