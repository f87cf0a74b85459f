"""The OpenAPI documents (mallcare_common.openapi) say what the services really serve:
every nameko `http` entrypoint declares its operation (and an operation is also the RPC
method of the same name), each declared permission exists in access.yml, the documents in
docs/openapi are the ones the declarations generate today, and each is a valid OpenAPI 3
document."""

import json

import pytest
from openapi_spec_validator import validate

from mallcare_common.auth import load_access
from mallcare_common.openapi import documented_operations, openapi_path, served_routes
from resolution.domain import actions as case_actions, batches, incidents
from scripts.openapi import ROOT, SERVICES, documents, rendered, service_class
from tests.helpers import POLICY_DIR


def declared(name):
    return documented_operations(service_class(name))


def what_to_add(cls, method, rule):
    return (
        f"{method} {rule} is served by {cls.__name__} but declares no operation: decorate it with\n"
        f'    @operation(Op("{method}", "{rule}", "<what it does>", "<permission in access.yml>", '
        f"{'body=<InSchema>, ' if method in ('POST', 'PUT', 'PATCH') else ''}responses={{200: <OutSchema>}}))\n"
        f"(or @http(Op(...)) when it answers a file or a page), then run python scripts/openapi.py"
    )


@pytest.mark.parametrize("name", SERVICES)
def test_every_served_route_declares_its_operation(name):
    cls = service_class(name)
    served = served_routes(cls)
    entrypoints = {op.entrypoint for op in declared(name)}
    problems = [what_to_add(cls, method, rule) for method, rule in sorted(served - entrypoints)]
    assert not problems, "\n".join(problems)
    documented = [(op.method, op.path) for op in declared(name)]
    assert len(documented) == len(set(documented)), "an operation is declared twice"


def test_each_case_and_incident_action_is_its_own_operation_with_the_body_it_takes():
    for rule, table in (
        ("/cases/<string:complaint_no>/", case_actions.ACTIONS),
        ("/incidents/<string:number>/", incidents.ACTIONS),
        ("/batch-checks/<string:number>/", batches.ACTIONS),
    ):
        ops = {op.path[len(rule) :]: op.body for op in declared("resolution") if op.route == rule + "<string:action>"}
        assert {action: body for action, (body, _) in table.items()} == ops


def test_every_permission_declared_exists_in_access_yml():
    permissions = load_access(POLICY_DIR / "access.yml")["permissions"]
    for name in SERVICES:
        unknown = {op.permission for op in declared(name) if op.permission} - set(permissions)
        assert not unknown, (name, unknown)


def test_the_checked_in_documents_are_current_and_valid():
    for name, document in documents().items():
        path = ROOT / "docs" / "openapi" / f"{name}.json"
        assert path.exists() and path.read_text(encoding="utf-8") == rendered(document), (
            f"{path.relative_to(ROOT)} is out of date: run python scripts/openapi.py"
        )
        validate(json.loads(path.read_text(encoding="utf-8")))


def test_an_operation_documents_its_callers_and_refusals():
    document = documents()["intake"]
    register = document["paths"]["/complaints"]["post"]
    assert register["x-permission"] == "complaint.register"
    assert register["security"] == [{"bearer": []}, {"apiKey": []}]  # channels may submit
    assert {"201", "200", "400", "401", "403", "409", "413", "422", "429"} <= set(register["responses"])
    assert register["responses"]["422"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }
    assert "fields" in document["components"]["schemas"]["ErrorOut"]["properties"]
    read = document["paths"]["/complaints/{number}"]["get"]
    assert "404" in read["responses"] and "429" in read["responses"]  # complaint.read is a channel's too
    assert document["paths"]["/health"]["get"]["security"] == []
    assert "/openapi.json" in document["paths"]
    triage = documents()["triage"]
    correction = triage["paths"]["/assessments/{complaint_no}/corrections"]["post"]
    assert "429" not in correction["responses"] and correction["security"] == [{"bearer": []}]
    body = triage["components"]["schemas"]["CorrectionIn"]
    assert "by" not in body["properties"]  # who corrects is who signed in
    assert body["additionalProperties"] is False
    assert openapi_path("/cases/<string:complaint_no>/<string:action>") == "/cases/{complaint_no}/{action}"
