"""R6.3: the event catalogue subscribers read (docs/events.md) is the one the
schemas generate: changing a contract without regenerating it fails here."""

import subprocess
import sys

from tests.helpers import ROOT


def test_docs_events_md_is_current():
    result = subprocess.run(
        [sys.executable, "scripts/event_catalogue.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_every_event_type_is_in_the_catalogue():
    from mallcare_common.contracts import EVENT_TYPES

    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    for name in EVENT_TYPES:
        assert f"## `{name}`" in text
