"""A store outage reaches HTTP callers as a 503 that tells them to come back, and
nothing of pymongo's text (hosts, ports, topology) leaves the service."""

import json

from pymongo.errors import AutoReconnect, ServerSelectionTimeoutError

from mallcare_common.web import HttpEntrypoint


def test_a_store_that_does_not_answer_is_a_generic_503_with_retry_after():
    entrypoint = HttpEntrypoint("GET", "/complaints")
    for error in (
        ServerSelectionTimeoutError(
            "127.0.0.1:27101: [Errno 111] Connection refused, Timeout: 3.0s, "
            "Topology Description: <TopologyDescription id: 65f0...>"
        ),
        AutoReconnect("connection closed: 127.0.0.1:27101"),
    ):
        response = entrypoint.response_from_exception(error)
        body = json.loads(response.get_data())
        assert response.status_code == 503 and response.headers["Retry-After"] == "5"
        assert body == {
            "error": "STORE_UNAVAILABLE",
            "message": "the service's store is not answering; try again shortly",
        }
