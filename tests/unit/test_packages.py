"""The packages' shape, read from their source: mallcare_common never imports a service (not
even lazily through importlib)."""
import ast

from tests.conftest import ROOT

SERVICES = {"intake", "triage", "resolution", "feedback", "analytics", "console"}


def imported(source):
    """(line, module) for each import of `source`, at any depth: import and from-import
    statements, and importlib.import_module / __import__ calls. A call whose name is computed
    (not a string literal) yields None for the module: what it imports cannot be read."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))):
            name = node.args[0]
            yield node.lineno, name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else None


def service_imports(source):
    """What in `source` imports a service, or may: 'line N: module' each."""
    return [f"line {line}: {module or 'a name computed at run time'}" for line, module in sorted(
            imported(source), key=lambda found: found[0]) if module is None or module.split(".")[0] in SERVICES]


def test_the_scan_finds_every_way_of_importing_a_service():
    source = """
import yaml
from . import auth
from .policy import load_policy_dir
import importlib
from importlib import import_module

def later(name):
    import intake.rules
    from triage import learned
    importlib.import_module("analytics.rebuild")
    importlib.import_module(f"{name}.policy")
    import_module("console.service")
    __import__("feedback")
    importlib.import_module("mallcare_common.auth")
"""
    assert service_imports(source) == [
        "line 9: intake.rules", "line 10: triage", "line 11: analytics.rebuild", "line 12: a name computed at run time",
        "line 13: console.service", "line 14: feedback"]


def test_the_shared_package_imports_no_service():
    found = {str(path.relative_to(ROOT)): service_imports(path.read_text(encoding="utf-8"))
             for path in sorted((ROOT / "services" / "common").rglob("*.py"))}
    assert {path: lines for path, lines in found.items() if lines} == {}
