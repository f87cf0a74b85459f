"""Issue 18: ruff's lint and its formatter run on the whole tree in every test run
(pyproject.toml says which rules: pycodestyle, pyflakes and bugbear, lines within 120)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"


def test_ruff_finds_nothing_in_the_tree():
    result = subprocess.run(
        [str(RUFF), "check", "--output-format", "concise", "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_tree_is_as_ruff_format_writes_it():
    result = subprocess.run(
        [str(RUFF), "format", "--check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, "run .venv/bin/ruff format .\n" + result.stdout + result.stderr


def test_ruff_format_would_find_a_file_laid_out_otherwise(tmp_path):
    (tmp_path / "crooked.py").write_text("x = {  'a':1 }\n")
    result = subprocess.run(
        [str(RUFF), "format", "--check", "--config", str(ROOT / "pyproject.toml"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "crooked.py" in result.stdout


def test_ruff_would_find_an_unused_import_and_a_name_never_defined(tmp_path):
    (tmp_path / "broken.py").write_text("import os\n\n\ndef f():\n    return undefined_name\n")
    result = subprocess.run(
        [str(RUFF), "check", "--output-format", "concise", "--config", str(ROOT / "pyproject.toml"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "F401" in result.stdout and "F821" in result.stdout
