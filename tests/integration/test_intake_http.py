"""R1.1-R1.5 over HTTP and RPC: the intake service on the real broker and store.

Registering, reading and listing complaints; idempotent resubmission (also
concurrent); review rejections kept with their reason; acknowledgement; and bad
input of every kind answered with field-level errors, nothing half-stored, the
service still serving.
"""

import re

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from intake.service import IntakeService
from mallcare_cli.examples import desk_complaint
from tests.helpers import bearer, staff


@pytest.fixture
def intake(container_factory, service_config, web_client, mongo_client):
    config = service_config("intake")
    container = container_factory(IntakeService, config)
    container.start()
    client = web_client(container)
    client.db = mongo_client[config["MONGO_DATABASE"]]
    client.config = config
    return client


def test_register_returns_a_numbered_complaint_with_its_acknowledgement_deadline(intake):
    response = intake.post("/complaints", json=desk_complaint())
    assert response.status_code == 201, response.text
    complaint = response.json()
    assert re.fullmatch(r"SHXJH-\d{8}-\d{4}", complaint["number"])
    assert complaint["status"] == "registered"
    assert complaint["description"].endswith("🍓")
    assert complaint["demands"]["expectation"] == "full refund plus the same value in goods"
    assert complaint["ack_due_at"] > complaint["received_at"]

    again = intake.get(f"/complaints/{complaint['number']}")
    assert again.status_code == 200
    assert again.json() == complaint


def test_after_hours_the_acknowledgement_clock_starts_at_the_next_opening(intake):
    """An app complaint at 23:10 in Shanghai is due 30 minutes after the 10:00 opening."""
    body = desk_complaint(
        channel="app", channel_ref="app-night-1", received_at="2026-11-19T23:10:00+08:00"
    )  # a Thursday
    created = intake.post("/complaints", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["ack_due_at"] == "2026-11-20T02:30:00+00:00"  # Friday 10:30 in Shanghai
    assert intake.get(f"/complaints/{created.json()['number']}").json() == created.json()
    assert created.json()["number"].startswith("SHXJH-20261119-")  # numbered by the mall's local date


def test_resubmission_by_the_same_channel_returns_the_same_complaint(intake):
    first = intake.post("/complaints", json=desk_complaint(channel_ref="app-77", channel="app"))
    second = intake.post("/complaints", json=desk_complaint(channel_ref="app-77", channel="app"))
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["number"] == second.json()["number"]
    assert intake.db.complaints.count_documents({"channel_ref": "app-77"}) == 1


def test_concurrent_duplicates_make_one_complaint(intake):
    pool = eventlet.GreenPool(10)
    responses = list(
        pool.imap(
            lambda _: intake.post("/complaints", json=desk_complaint(channel="wechat", channel_ref="wx-msg-991")),
            range(10),
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 9 + [201]
    assert len({r.json()["number"] for r in responses}) == 1
    assert intake.db.complaints.count_documents({"channel_ref": "wx-msg-991"}) == 1


def test_numbers_are_unique_under_concurrency(intake):
    pool = eventlet.GreenPool(10)
    responses = list(
        pool.imap(
            lambda i: intake.post(
                "/complaints", json=desk_complaint(channel_ref=f"desk-{i}", customer={"phone": f"1390000{i:04d}"})
            ),
            range(20),
        )
    )
    assert all(r.status_code == 201 for r in responses)
    assert len({r.json()["number"] for r in responses}) == 20


def test_review_rejects_with_a_reason_and_keeps_the_complaint(intake):
    first = intake.post("/complaints", json=desk_complaint(channel_ref="hot-1", channel="hotline")).json()
    duplicate = intake.post("/complaints", json=desk_complaint(channel_ref="web-1", channel="web"))
    assert duplicate.status_code == 201
    rejected = duplicate.json()
    assert rejected["status"] == "rejected"
    assert rejected["rejection"] == {
        "reason": "duplicate",
        "duplicate_of": first["number"],
        "detail": f"The same complaint was registered as {first['number']}.",
    }

    vague = intake.post("/complaints", json=desk_complaint(channel_ref="d-2", description="😡😡😡", demands={})).json()
    assert vague["rejection"]["reason"] == "insufficient_information"

    listed = intake.get("/complaints", params={"status": "rejected"}).json()
    assert {c["number"] for c in listed["items"]} == {rejected["number"], vague["number"]}


def test_an_anonymous_suggestion_is_registered(intake):
    # JSON clients send null for what they do not have: read as left out
    response = intake.post(
        "/complaints",
        json=desk_complaint(
            channel="suggestion_box",
            channel_ref="box-3-0012",
            customer=None,
            anger_score=None,
            product=None,
            location={"area": "toilets", "merchant_id": None},
        ),
    )
    assert response.status_code == 201, response.text
    complaint = response.json()
    assert complaint["status"] == "registered"
    assert complaint["anger_score"] is None and complaint["product"] is None
    assert complaint["location"] == {"area": "toilets"}
    left_out = intake.post(
        "/complaints",
        json={
            k: v
            for k, v in desk_complaint(
                channel="suggestion_box", channel_ref="box-3-0013", customer={}, location={"area": "toilets"}
            ).items()
            if k not in ("anger_score", "product")
        },
    ).json()
    differs = {"number", "channel_ref", "received_at", "registered_at", "ack_due_at"}
    assert {k: v for k, v in complaint.items() if k not in differs} == {
        k: v for k, v in left_out.items() if k not in differs
    }


def test_acknowledgement_is_recorded_once(intake):
    number = intake.post("/complaints", json=desk_complaint()).json()["number"]
    ack = {"method": "in_person"}
    first = intake.post(f"/complaints/{number}/acknowledgement", json=ack, headers=staff("D3001"))
    assert first.status_code == 200, first.text
    record = first.json()["acknowledgement"]
    assert record["acknowledged_by"] == "D3001" and record["within_deadline"] is True  # who signed in
    again = intake.post(
        f"/complaints/{number}/acknowledgement", json={**ack, "acknowledged_by": "E9999"}, headers=staff("E3001")
    )
    assert again.json()["acknowledgement"] == record
    assert first.json()["status"] == "acknowledged"


def test_a_rejected_complaint_cannot_be_acknowledged(intake):
    number = intake.post("/complaints", json=desk_complaint(description="??", demands={})).json()["number"]
    response = intake.post(f"/complaints/{number}/acknowledgement", json={"acknowledged_by": "E1", "method": "sms"})
    assert response.status_code == 409
    assert "insufficient_information" in response.json()["message"]


def test_metrics_count_complaints_by_mall_channel_and_outcome(intake):
    def count(outcome):
        for line in intake.get("/metrics").text.splitlines():
            if (
                line.startswith("mallcare_intake_complaints_total{")
                and f'outcome="{outcome}"' in line
                and 'channel="hotline"' in line
                and 'mall_id="bj-chaoyang"' in line
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = (count("registered"), count("resubmitted"))
    intake.post("/complaints", json=desk_complaint(mall_id="bj-chaoyang", channel="hotline", channel_ref="h-9"))
    intake.post("/complaints", json=desk_complaint(mall_id="bj-chaoyang", channel="hotline", channel_ref="h-9"))
    assert (count("registered"), count("resubmitted")) == (before[0] + 1, before[1] + 1)


def test_list_filters_and_pages(intake):
    for i in range(5):
        intake.post("/complaints", json=desk_complaint(channel_ref=f"p-{i}", customer={"phone": f"1370000{i:04d}"}))
    intake.post("/complaints", json=desk_complaint(mall_id="bj-chaoyang", channel_ref="bj-1"))
    page = intake.get("/complaints", params={"mall_id": "sh-xujiahui", "per_page": 2, "page": 2}).json()
    assert page["total"] == 5 and page["page"] == 2 and len(page["items"]) == 2
    assert all(c["mall_id"] == "sh-xujiahui" for c in page["items"])
    everything = intake.get("/complaints", params={"per_page": 100}).json()["items"]
    received = [c["received_at"] for c in everything]
    assert received == sorted(received, reverse=True)


BAD_INPUTS = [
    ("malformed json", b'{"mall_id": "sh-xujiahui",', 400, None),
    ("not an object", b'["desk"]', 400, None),
    ("missing fields", {"channel": "desk"}, 422, {"mall_id", "description"}),
    ("unknown channel", desk_complaint(channel="carrier_pigeon"), 422, {"channel"}),
    ("unknown mall", desk_complaint(mall_id="no-such-mall"), 422, {"mall_id"}),
    ("wrong types", desk_complaint(anger_score="5", staff_involved="E1"), 422, {"anger_score", "staff_involved"}),
    ("anger out of range", desk_complaint(anger_score=9), 422, {"anger_score"}),
    ("operator injection", desk_complaint(channel_ref={"$gt": ""}), 422, {"channel_ref"}),
    ("nested operator", desk_complaint(customer={"phone": {"$ne": None}}), 422, {"customer"}),
    ("unknown field", desk_complaint(**{"$where": "1"}), 422, {"$where"}),
    ("naive time", desk_complaint(incident_time="2026-11-20T10:00:00"), 422, {"incident_time"}),
    ("future time", desk_complaint(incident_time="2099-01-01T10:00:00+08:00"), 422, {"incident_time"}),
    ("oversized body", desk_complaint(description="长" * 40000), 413, None),
]


@pytest.mark.parametrize("body,status,fields", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_a_clear_error_and_stores_nothing(intake, body, status, fields):
    if isinstance(body, bytes):
        response = intake.post("/complaints", data=body, headers={"Content-Type": "application/json"})
    else:
        response = intake.post("/complaints", json=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["error"] and error["message"]
    if fields:
        assert fields <= set(error["fields"]), error
    assert intake.db.complaints.count_documents({}) == 0
    # still serving
    assert intake.post("/complaints", json=desk_complaint()).status_code == 201


def test_unknown_number_is_404_and_bad_query_is_422(intake):
    assert intake.get("/complaints/SHXJH-20260101-9999").status_code == 404
    bad = intake.get("/complaints", params={"per_page": 1000, "status": "lost"})
    assert bad.status_code == 422 and {"per_page", "status"} <= set(bad.json()["fields"])


def test_rpc_has_the_same_contract(intake):
    with ClusterRpcProxy(
        {"AMQP_URI": intake.config["AMQP_URI"]}, context_data={"authorization": bearer()["Authorization"]}
    ) as cluster:
        result = cluster.intake.register_complaint(desk_complaint(channel_ref="rpc-1"))
        assert result["created"] is True
        number = result["complaint"]["number"]
        assert cluster.intake.register_complaint(desk_complaint(channel_ref="rpc-1"))["created"] is False
        assert cluster.intake.get_complaint(number)["number"] == number
        listed = cluster.intake.list_complaints({"channel": "desk", "per_page": 5})
        assert [c["number"] for c in listed["items"]] == [number] and listed["total"] == 1
        acknowledged = cluster.intake.acknowledge_complaint(number, {"acknowledged_by": "bot", "method": "auto_reply"})
        assert acknowledged["acknowledgement"]["method"] == "auto_reply"
        with pytest.raises(Exception) as error:
            cluster.intake.register_complaint({"channel": "fax"})
        assert "ValidationError" in str(error.value) and "mall_id" in str(error.value)


def test_the_desk_picks_merchants_from_its_own_malls_registry(intake):
    listed = intake.get("/malls/sh-xujiahui/merchants", headers=staff("D3001"))
    assert listed.status_code == 200
    merchants = {m["id"]: m for m in listed.json()["items"]}
    assert merchants["T-17"] == {"id": "T-17", "name": "佳农水果", "floor": "B1", "area": "fresh produce"}
    assert "B-101" not in merchants  # Beijing's tenant, not Shanghai's
    assert intake.get("/malls/bj-chaoyang/merchants", headers=staff("D3001")).status_code == 403
    assert intake.get("/malls/nowhere/merchants").status_code == 404  # chain-wide caller, unknown mall


def test_staff_see_their_own_malls_by_name_and_the_chain_sees_all(intake):
    mine = intake.get("/malls", headers=staff("D3001")).json()["items"]
    assert mine == [{"id": "sh-xujiahui", "code": "SHXJH", "name": "上海徐家汇店"}]
    chain = {m["id"] for m in intake.get("/malls").json()["items"]}  # chain-wide caller
    assert chain == {"sh-xujiahui", "bj-chaoyang", "gz-tianhe"}


def test_the_acknowledgement_queue_lists_my_malls_waiting_complaints_earliest_deadline_first(intake):
    """R1.2: what is still to be acknowledged, by its deadline (the desk's 1 minute before the
    online channels' 30), of the caller's malls only; acknowledged and rejected ones are done."""

    def register(channel, at, mall_id="sh-xujiahui", **more):  # a Thursday morning, the mall open
        body = desk_complaint(
            mall_id=mall_id,
            channel=channel,
            channel_ref=f"{channel}-{mall_id}-{at}",
            received_at=f"2026-11-19T{at}:00+08:00",
            customer={"phone": f"1390000{at.replace(':', '')}"},
            **more,
        )
        created = intake.post("/complaints", json=body)
        assert created.status_code == 201, created.text
        return created.json()

    hotline = register("hotline", "10:10")  # due 10:40
    web = register("web", "10:20")  # due 10:50
    social = register("social", "10:00")  # due 10:30
    desk = register("desk", "10:05")  # due 10:06
    register("hotline", "10:01", mall_id="bj-chaoyang")  # another mall's
    told = register("app", "10:02")
    assert intake.post(f"/complaints/{told['number']}/acknowledgement", json={"method": "app_message"}).ok
    assert register("web", "10:03", description="??", demands={})["status"] == "rejected"

    queue = intake.get("/acknowledgements/waiting", headers=staff("D3001"))
    assert queue.status_code == 200, queue.text
    listed = queue.json()
    assert [c["number"] for c in listed["items"]] == [c["number"] for c in (desk, social, hotline, web)]
    assert [c["ack_due_at"] for c in listed["items"]] == [
        "2026-11-19T02:06:00+00:00",
        "2026-11-19T02:30:00+00:00",
        "2026-11-19T02:40:00+00:00",
        "2026-11-19T02:50:00+00:00",
    ]
    assert listed["total"] == 4 and {c["status"] for c in listed["items"]} == {"registered"}
    assert "13900" not in str(listed)  # the customer masked, as every read shows them

    online = intake.get("/acknowledgements/waiting", params={"channels": "web,hotline"}, headers=staff("D3001"))
    assert [c["number"] for c in online.json()["items"]] == [hotline["number"], web["number"]]
    second = intake.get("/acknowledgements/waiting", params={"per_page": 2, "page": 2}, headers=staff("D3001"))
    assert [c["number"] for c in second.json()["items"]] == [hotline["number"], web["number"]]

    # the chain-wide see every mall's; a mall not the caller's is refused
    chain = intake.get("/acknowledgements/waiting").json()
    assert chain["total"] == 5 and {c["mall_id"] for c in chain["items"]} == {"sh-xujiahui", "bj-chaoyang"}
    refused = intake.get("/acknowledgements/waiting", params={"mall_id": "bj-chaoyang"}, headers=staff("D3001"))
    assert refused.status_code == 403

    # once acknowledged, it is no longer waiting
    acked = intake.post(
        f"/complaints/{social['number']}/acknowledgement", json={"method": "phone"}, headers=staff("D3001")
    )
    assert acked.status_code == 200, acked.text
    after = intake.get("/acknowledgements/waiting", headers=staff("D3001")).json()
    assert [c["number"] for c in after["items"]] == [c["number"] for c in (desk, hotline, web)]


def test_the_acknowledgement_queue_refuses_what_it_does_not_know(intake):
    bad = intake.get("/acknowledgements/waiting", params={"channels": "hotline,carrier_pigeon", "per_page": 0})
    assert bad.status_code == 422 and {"channels", "per_page"} <= set(bad.json()["fields"])
    assert intake.get("/acknowledgements/waiting", params={"channels": ","}).status_code == 422
    # a role that reads complaints but acknowledges none has no queue
    regional = bearer("R0001", "regional_manager", ["sh-xujiahui"])
    assert intake.get("/acknowledgements/waiting", headers=regional).status_code == 403
