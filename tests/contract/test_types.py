"""Issue 18: mypy checks the shared package, services' storage and the pure code in every
test run (pyproject.toml says which files, and which modules are strict: resolution's
domain package, each service's rules and the whole shared package)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MYPY = Path(sys.executable).parent / "mypy"


def mypy(*args, cwd=ROOT):
    return subprocess.run([str(MYPY), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_mypy_finds_nothing_in_the_typed_modules():
    result = mypy()
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_would_find_a_wrong_type_and_a_function_without_annotations(tmp_path):
    # a strict module of the configuration, written where the configuration's search path finds it
    package = tmp_path / "resolution" / "domain"
    package.mkdir(parents=True)
    (tmp_path / "resolution" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "broken.py").write_text(
        "def total(fen: int) -> str:\n    return fen\n\n\ndef untyped(x):\n    return x\n"
    )
    result = mypy(
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(tmp_path / "cache"),
        str(package / "broken.py"),
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[return-value]" in result.stdout and "[no-untyped-def]" in result.stdout, result.stdout
