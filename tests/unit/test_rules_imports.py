"""Issue 18: each service's rules import nothing of the web, messaging or store edges,
nor the service or its storage: their refusals are plain errors (their own, or
mallcare_common.errors), their events are data the service puts in the outbox. Read
from the source (every import statement, also inside functions), so an edge import
anywhere in a rules module fails here."""

import ast
import importlib.util
from pathlib import Path

import pytest

import resolution.domain

EDGES = (
    "nameko",
    "werkzeug",
    "pymongo",
    "eventlet",
    "kombu",
    "mallcare_common.web",
    "mallcare_common.messaging",
    "mallcare_common.mongo",
    "mallcare_common.rpc",
)
RESOLUTION_DOMAIN = Path(resolution.domain.__file__).parent

# Each service's modules that decide (docs/architecture.md, "Inside a service").
RULES = [
    "intake.rules",
    "intake.progress",
    "triage.rules",
    "triage.classify",
    "triage.text",
    "triage.learned",
    "triage.demand",
    "feedback.rules",
    "feedback.surveys",
    "analytics.actions",
    "analytics.clocks",
    "analytics.reports",
    "analytics.live",
    "analytics.html_report",
    "analytics.wording",
    "analytics.export",
    "notify.rules",
    *sorted(f"resolution.domain.{p.stem}" for p in RESOLUTION_DOMAIN.glob("*.py")),
]


def imported(path, module):
    """The absolute names a module imports (relative imports resolved against its package)."""
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base_package = package[: len(package) - node.level + 1] if node.level else []
            base = ".".join([*base_package, *([node.module] if node.module else [])])
            # `from mallcare_common import web` imports the module mallcare_common.web
            names += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return names


def edges_in(path, module):
    """The edges `module` (its source at `path`) imports from: the shared ones and its own
    service's entrypoints and storage."""
    service = module.split(".")[0]
    edges = (*EDGES, f"{service}.service", f"{service}.storage")
    return sorted(
        {edge for name in imported(path, module) for edge in edges if name == edge or name.startswith(edge + ".")}
    )


@pytest.mark.parametrize("module", RULES)
def test_a_rules_module_imports_no_edge(module):
    assert edges_in(Path(importlib.util.find_spec(module).origin), module) == []


def test_the_scan_sees_every_form_of_an_edge_import(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "import pymongo.errors\nfrom mallcare_common import web\n"
        "def f():\n    from ..service import ACTIONS\n    from nameko.rpc import rpc\n"
        "from mallcare_common.contracts import build_event\nfrom .errors import StateConflict\n"
        "from mallcare_common.messaging import new_outbox\nfrom .storage import Store\n"
        "from triage.service import TriageService\n"
    )
    assert edges_in(source, "resolution.domain.m") == [
        "mallcare_common.messaging",
        "mallcare_common.web",
        "nameko",
        "pymongo",
        "resolution.service",
    ]
    assert edges_in(source, "triage.m") == [
        "mallcare_common.messaging",
        "mallcare_common.web",
        "nameko",
        "pymongo",
        "triage.service",
        "triage.storage",
    ]


def test_resolutions_domain_has_its_modules():
    assert set(RULES) >= {
        f"resolution.domain.{name}"
        for name in ("states", "compliance", "authority", "opening", "actions", "incidents", "errors", "step")
    }
