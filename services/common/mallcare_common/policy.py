"""Loading a service's policy files: the chain's mall registry (malls.yml) plus
the service's own file, from MALLCARE.POLICY_DIR. Each service supplies the
function that validates its file; a broken policy stops the start with the
field-level messages, and a reload keeps the policy in force unless the new one
is valid."""
import os

import yaml
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from nameko.extensions import DependencyProvider

from .malls import load_registry_file


class AllowedTime(Schema):
    """A deadline rule as policy data; BusinessCalendar.due computes it."""
    hours = fields.Float(validate=validate.Range(min=0.1, max=24 * 365))
    working_hours = fields.Float(validate=validate.Range(min=0.1, max=24 * 365))
    working_days = fields.Integer(validate=validate.Range(min=1, max=365))

    @validates_schema
    def _one(self, data, **kwargs):
        if len({k for k in data if k in ("hours", "working_hours", "working_days")}) != 1:
            raise ValidationError("Give exactly one of hours, working_hours, working_days.")


def load_policy_dir(path, filename, load):
    """`load(parsed_yaml, malls)` validates and builds the policy; raises ValidationError."""
    malls = load_registry_file(os.path.join(path, "malls.yml"))
    with open(os.path.join(path, filename), encoding="utf-8") as handle:
        return load(yaml.safe_load(handle), malls)


class PolicyFiles(DependencyProvider):
    """Workers get a handle: `.current` is the policy in force, `.reload()` reads the files again."""

    def __init__(self, filename, load):
        self.filename, self.load = filename, load

    def setup(self):
        self.path = self.container.config.get("MALLCARE", {}).get("POLICY_DIR", "deploy/policy")
        try:
            self.policy = self._read()
        except ValidationError as exc:
            raise RuntimeError(f"{self.filename} in {self.path} is invalid: {exc.messages}") from exc

    def reload(self):
        self.policy = self._read()
        return self.policy

    def _read(self):
        return load_policy_dir(self.path, self.filename, self.load)

    def get_dependency(self, worker_ctx):
        return _Handle(self)


class _Handle:
    def __init__(self, provider):
        self._provider = provider

    @property
    def current(self):
        return self._provider.policy

    def reload(self):
        return self._provider.reload()
