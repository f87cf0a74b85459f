"""Issue 18: resolution's domain (resolution/domain/) imports nothing of the web,
messaging or store edges, nor the service or its storage: its refusals are its own
errors, its events are data. Read from the source (every import statement, also
inside functions), so an edge import anywhere in a domain module fails here."""
import ast
from pathlib import Path

import pytest

import resolution.domain

DOMAIN = Path(resolution.domain.__file__).parent
EDGES = ("nameko", "werkzeug", "pymongo", "eventlet", "kombu", "mallcare_common.web", "mallcare_common.messaging",
         "mallcare_common.mongo", "mallcare_common.rpc", "resolution.service", "resolution.storage")


def imported(path):
    """The absolute names a module imports (relative imports resolved against resolution.domain)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            package = ["resolution", "domain"][:max(0, 3 - node.level)] if node.level else []
            base = ".".join([*package, *([node.module] if node.module else [])])
            # `from mallcare_common import web` imports the module mallcare_common.web
            names += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return names


def edges_in(path):
    """The edges `path` imports from."""
    return sorted({edge for name in imported(path) for edge in EDGES if name == edge or name.startswith(edge + ".")})


@pytest.mark.parametrize("path", sorted(DOMAIN.glob("*.py")), ids=lambda p: p.name)
def test_a_domain_module_imports_no_edge(path):
    assert edges_in(path) == []


def test_the_scan_sees_every_form_of_an_edge_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import pymongo.errors\nfrom mallcare_common import web\n"
                      "def f():\n    from ..service import ACTIONS\n    from nameko.rpc import rpc\n"
                      "from mallcare_common.contracts import build_event\nfrom .errors import StateConflict\n")
    assert edges_in(module) == ["mallcare_common.web", "nameko", "pymongo", "resolution.service"]


def test_the_domain_has_its_modules():
    assert {p.stem for p in DOMAIN.glob("*.py")} >= {"states", "compliance", "authority", "opening", "actions",
                                                      "incidents", "errors", "step"}
