"""The packages' shape, read from their source: mallcare_common never imports a service (not
even lazily through importlib), and every package's pyproject.toml declares what its code
imports, in a range that takes the version requirements*.txt pins."""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

import pytest
from packaging.requirements import Requirement

from tests.conftest import ROOT

SERVICES = {"intake", "triage", "resolution", "feedback", "analytics", "console", "notify"}
PROJECTS = sorted([*ROOT.glob("services/*/pyproject.toml"), *ROOT.glob("sdk/*/pyproject.toml")])


def imported(source):
    """(line, module) for each import of `source`, at any depth: import and from-import
    statements, and importlib.import_module / __import__ calls. A call whose name is computed
    (not a string literal) yields None for the module: what it imports cannot be read."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            yield node.lineno, node.module
        elif (
            isinstance(node, ast.Call)
            and node.args
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__"))
            )
        ):
            name = node.args[0]
            yield node.lineno, name.value if isinstance(name, ast.Constant) and isinstance(name.value, str) else None


def service_imports(source):
    """What in `source` imports a service, or may: 'line N: module' each."""
    return [
        f"line {line}: {module or 'a name computed at run time'}"
        for line, module in sorted(imported(source), key=lambda found: found[0])
        if module is None or module.split(".")[0] in SERVICES
    ]


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
        "line 9: intake.rules",
        "line 10: triage",
        "line 11: analytics.rebuild",
        "line 12: a name computed at run time",
        "line 13: console.service",
        "line 14: feedback",
    ]


def test_the_shared_package_imports_no_service():
    found = {
        str(path.relative_to(ROOT)): service_imports(path.read_text(encoding="utf-8"))
        for path in sorted((ROOT / "services" / "common").rglob("*.py"))
    }
    assert {path: lines for path, lines in found.items() if lines} == {}


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def shipped(project):
    """The top-level packages a pyproject.toml ships (packages.find includes, or packages)."""
    packages = tomllib.loads(project.read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    names = packages["find"]["include"] if isinstance(packages, dict) else packages
    return {name.rstrip("*").rstrip(".") for name in names}


def first_party():
    """import name -> project name, for every package of this repository."""
    return {
        package: canonical(tomllib.loads(project.read_text(encoding="utf-8"))["project"]["name"])
        for project in PROJECTS
        for package in shipped(project)
    }


def pins():
    pinned = {}
    for requirements in ROOT.glob("requirements*.txt"):
        for line in requirements.read_text(encoding="utf-8").splitlines():
            name, sep, version = line.split("#")[0].strip().partition("==")
            if sep:
                pinned[canonical(name)] = version.strip()
    return pinned


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: str(p.parent.relative_to(ROOT)))
def test_each_package_declares_what_it_imports_in_a_range_that_takes_the_pin(project):
    declared = {
        canonical(r.name): r
        for r in map(Requirement, tomllib.loads(project.read_text(encoding="utf-8"))["project"].get("dependencies", []))
    }
    ours, distributions, own = first_party(), packages_distributions(), shipped(project)
    needed = {}
    for package in own:
        for path in sorted((project.parent / package).rglob("*.py")):
            for line, module in imported(path.read_text(encoding="utf-8")):
                top = (module or "").split(".")[0]
                if not top or top in own or top in sys.stdlib_module_names:
                    continue
                where = f"{path.relative_to(ROOT)}:{line}"
                if top in ours:
                    needed.setdefault(ours[top], where)
                else:
                    assert top in distributions, f"{where} imports {top}, which no installed distribution has"
                    for distribution in distributions[top]:
                        needed.setdefault(canonical(distribution), where)
    assert {name: where for name, where in needed.items() if name not in declared} == {}, (
        f"imported by {project.parent.name}'s code but not in its pyproject.toml's dependencies"
    )

    pinned = pins()
    for name, requirement in declared.items():
        if name in ours.values():
            continue
        assert name in pinned, f"{name}: declared by {project.parent.name}, pinned in no requirements*.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{project.parent.name} asks {requirement}, requirements pin {name}=={pinned[name]}"
        )
