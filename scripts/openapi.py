"""Writes each service's OpenAPI document to docs/openapi/<service>.json, or with --check
says which are out of date (exit 1). The documents come from the operations each service class
declares (`@operation(Op(...))`, mallcare_common.openapi) with their marshmallow schemas, and the
permissions in deploy/policy/access.yml; the services serve the same at GET /openapi.json.

    .venv/bin/python scripts/openapi.py [--check]"""

import argparse
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("intake", "triage", "resolution", "feedback", "analytics", "notify")


def service_class(name):
    """intake -> intake.service.IntakeService"""
    return getattr(importlib.import_module(f"{name}.service"), f"{name.title()}Service")


def documents():
    from mallcare_common.auth import holders, load_access
    from mallcare_common.openapi import build, documented_operations

    permissions = holders(load_access(ROOT / "deploy" / "policy" / "access.yml"))
    return {name: build(name, documented_operations(service_class(name)), permissions) for name in SERVICES}


def rendered(document):
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a document is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, document in documents().items():
        path = ROOT / "docs" / "openapi" / f"{name}.json"
        text = rendered(document)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if stale:
        print(
            ("out of date (run python scripts/openapi.py): " if args.check else "wrote: ") + ", ".join(map(str, stale)),
            file=sys.stderr,
        )
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
