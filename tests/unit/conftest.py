"""Shared by the unit tests: the shipped mall registry."""
import pytest

from mallcare_common.malls import load_registry_file
from tests.conftest import POLICY_DIR


@pytest.fixture(scope="session")
def malls():
    return load_registry_file(POLICY_DIR / "malls.yml")
