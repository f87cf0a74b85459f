"""R6.3: the AsyncAPI document (docs/asyncapi.yaml, and the subscriber SDK's JSON copy) is
the one the contracts and the services' handlers generate, and is valid AsyncAPI 3.0 by
the official JSON Schema (vendored from @asyncapi/specs, see schemas/README.md)."""

import copy
import json
import subprocess
import sys

import jsonschema
import pytest
import yaml

from mallcare_common.contracts import EVENT_TYPES
from mallcare_common.event_stream import EVENT_STREAM
from scripts.asyncapi import DOC, SDK_COPY, subscriptions
from tests.helpers import ROOT

ASYNCAPI_SCHEMA = ROOT / "tests" / "contract" / "schemas" / "asyncapi-3.0.0.json"


@pytest.fixture(scope="module")
def document():
    return yaml.safe_load(DOC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator():
    return jsonschema.Draft7Validator(json.loads(ASYNCAPI_SCHEMA.read_text(encoding="utf-8")))


def test_the_documents_are_current():
    result = subprocess.run(
        [sys.executable, "scripts/asyncapi.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_sdk_ships_the_same_document(document):
    assert json.loads(SDK_COPY.read_text(encoding="utf-8")) == document


def test_the_document_is_valid_asyncapi_3(document, validator):
    assert [error.message for error in validator.iter_errors(document)] == []


def test_the_validator_refuses_a_broken_document(document, validator):
    """The check above is not vacuous: an operation without its channel is refused."""
    broken = copy.deepcopy(document)
    del next(iter(broken["operations"].values()))["channel"]
    assert not validator.is_valid(broken)


def test_each_event_type_has_its_exchange_version_publisher_and_subscribers(document):
    subscribed = subscriptions()
    for name, kind in EVENT_TYPES.items():
        channel = document["channels"][name]
        assert channel["bindings"]["amqp"]["exchange"]["name"] == f"{kind.source}.events"
        payload = channel["messages"][name]["payload"]["properties"]
        assert payload["schema_version"]["const"] == kind.version
        assert payload["event_type"]["const"] == name
        operations = {
            key: op for key, op in document["operations"].items() if op["channel"] == {"$ref": f"#/channels/{name}"}
        }
        assert [op["action"] for key, op in operations.items() if key.startswith(f"{kind.source}.send.")] == ["send"]
        receivers = sorted(key for key, op in operations.items() if op["action"] == "receive")
        assert receivers == sorted(subscribed[(kind.source, name)])


def test_the_event_stream_carries_every_event_type(document):
    stream = document["channels"][EVENT_STREAM]
    assert stream["bindings"]["amqp"]["queue"]["name"] == EVENT_STREAM
    assert stream["messages"] == {name: {"$ref": f"#/channels/{name}/messages/{name}"} for name in EVENT_TYPES}
