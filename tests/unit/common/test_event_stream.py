"""The event stream's retention comes from the MALLCARE settings, checked when the service
starts: a value RabbitMQ would refuse stops it with the setting's name."""

import pytest

from mallcare_common.event_stream import stream_arguments


def test_the_stream_keeps_14_days_and_20_gb_unless_set():
    assert stream_arguments({"MALLCARE": {"POLICY_DIR": "deploy/policy"}}) == {
        "x-queue-type": "stream",
        "x-max-age": "14D",
        "x-max-length-bytes": 20_000_000_000,
    }


def test_the_settings_give_the_retention():
    # as config.yml hands them from the environment: text
    settings = {"EVENT_STREAM_MAX_AGE": "30D", "EVENT_STREAM_MAX_BYTES": "50000000000"}
    arguments = stream_arguments({"MALLCARE": settings})
    assert (arguments["x-max-age"], arguments["x-max-length-bytes"]) == ("30D", 50_000_000_000)


@pytest.mark.parametrize(
    "setting,value",
    [("EVENT_STREAM_MAX_AGE", "14 days"), ("EVENT_STREAM_MAX_AGE", "0D"), ("EVENT_STREAM_MAX_BYTES", 0)],
)
def test_a_retention_rabbitmq_would_refuse_stops_the_service(setting, value):
    with pytest.raises(ValueError, match=setting):
        stream_arguments({"MALLCARE": {setting: value}})
