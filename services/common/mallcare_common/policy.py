"""Loading a service's policy files: the chain's mall registry (malls.yml) plus
the service's own file, from MALLCARE.POLICY_DIR. Each service supplies the
function that validates its file; a broken policy (an InvalidPolicy naming the
file and its fields) stops the start, and a reload keeps the policy in force unless
the new one is valid."""

import os
from collections.abc import Callable
from typing import Any, TypeVar

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from nameko.extensions import DependencyProvider

from .malls import MallRegistry, load_registry

Policy = TypeVar("Policy")


class AllowedTime(Schema):
    """A deadline rule as policy data; BusinessCalendar.due computes it."""

    hours = fields.Float(validate=validate.Range(min=0.1, max=24 * 365))
    working_hours = fields.Float(validate=validate.Range(min=0.1, max=24 * 365))
    working_days = fields.Integer(validate=validate.Range(min=1, max=365))

    @validates_schema
    def _one(self, data: dict[str, Any], **kwargs: Any) -> None:
        if len({k for k in data if k in ("hours", "working_hours", "working_days")}) != 1:
            raise ValidationError("Give exactly one of hours, working_hours, working_days.")


class InvalidPolicy(Exception):
    """A policy file that cannot be used (missing, not YAML, or not valid data): the
    message names the file and each field that is wrong; `messages` holds marshmallow's
    field messages (or one sentence when the file is not even readable data)."""

    def __init__(self, path: str | os.PathLike[str], messages: object) -> None:
        self.path, self.messages = str(path), messages
        super().__init__(f"{self.path} is invalid: {'; '.join(_flatten(messages))}")


def _flatten(messages: object, where: str = "") -> list[str]:
    """{"sla": {"resolution": ["Missing: urgent."]}} -> ["sla.resolution: Missing: urgent."]"""
    if isinstance(messages, dict):
        return [
            line
            for key, value in messages.items()
            for line in _flatten(value, where if key == "_schema" else f"{where}.{key}".lstrip("."))
        ]
    if isinstance(messages, (list, tuple)):
        return [line for value in messages for line in _flatten(value, where)]
    return [f"{where}: {messages}" if where else str(messages)]


def read_policy_file(path: str | os.PathLike[str], load: Callable[[dict[str, Any]], Policy]) -> Policy:
    """`load(parsed_yaml)` on the file's content; any reason it cannot be used is an InvalidPolicy."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise InvalidPolicy(path, f"cannot be read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:  # its text names the line and column
        raise InvalidPolicy(path, f"not YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(data, dict):
        raise InvalidPolicy(path, f"expected a mapping of settings, found {type(data).__name__}")
    try:
        return load(data)
    except ValidationError as exc:
        raise InvalidPolicy(path, exc.messages) from exc


def load_policy_dir(
    path: str | os.PathLike[str], filename: str, load: Callable[[dict[str, Any], MallRegistry], Policy]
) -> Policy:
    """`load(parsed_yaml, malls)` validates and builds the policy; raises InvalidPolicy."""
    malls = read_policy_file(os.path.join(path, "malls.yml"), load_registry)
    return read_policy_file(os.path.join(path, filename), lambda data: load(data, malls))


class PolicyFiles(DependencyProvider):
    """Workers get a handle: `.current` is the policy in force, `.reload()` reads the files again.

    A broken file stops the start (InvalidPolicy out of setup) and is refused by a reload,
    which leaves the policy in force as it was."""

    def __init__(self, filename: str, load: Callable[[dict[str, Any], MallRegistry], Any]) -> None:
        # load builds the service's own policy (each service has its class): Any here
        self.filename, self.load = filename, load

    def setup(self) -> None:
        self.path = self.container.config.get("MALLCARE", {}).get("POLICY_DIR", "deploy/policy")
        self.policy = self._read()

    def reload(self) -> Any:
        self.policy = self._read()  # assigned only once the new files are read and valid
        return self.policy

    def _read(self) -> Any:
        return load_policy_dir(self.path, self.filename, self.load)

    def get_dependency(self, worker_ctx: Any) -> "_Handle":
        return _Handle(self)


class _Handle:
    def __init__(self, provider: PolicyFiles) -> None:
        self._provider = provider

    @property
    def current(self) -> Any:
        return self._provider.policy

    def reload(self) -> Any:
        return self._provider.reload()
