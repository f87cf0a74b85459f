"""Issue 18: ruff's lint runs on the whole tree in every test run (pyproject.toml says which
rules: pycodestyle, pyflakes and bugbear; line length is left to the formatter)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"


def test_ruff_finds_nothing_in_the_tree():
    result = subprocess.run([str(RUFF), "check", "--output-format", "concise", "."], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_would_find_an_unused_import_and_a_name_never_defined(tmp_path):
    (tmp_path / "broken.py").write_text("import os\n\n\ndef f():\n    return undefined_name\n")
    result = subprocess.run([str(RUFF), "check", "--output-format", "concise", "--config", str(ROOT / "pyproject.toml"),
                             str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "F401" in result.stdout and "F821" in result.stdout
