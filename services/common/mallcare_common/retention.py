"""Retention (issue 7): N months (policy `retention_months`) after a complaint closed,
the service holding its personal data anonymises it - the record and its statistics
stay, the customer's name, contact and the identifiers in its free text go.

Each service supplies `anonymise(db, cutoff, now, dry_run) -> counts`; this module
runs it and records every run (dry runs too) in `retention_runs`. Three ways in:
the command `python -m <service>.retention [--dry-run]`, `POST /retention/run`
(permission `retention.run`) and an hourly timer that one replica runs (a lease).
"""

import argparse
import calendar
import json
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

import yaml
from marshmallow import Schema, fields, validate
from pymongo import MongoClient, WriteConcern
from pymongo.database import Database

from nameko.extensions import DependencyProvider

from .auth import Gate
from .calendar import utc_now
from .malls import MallRegistry
from .mongo import Lease, leased_timer
from .openapi import Op
from .operations import operation
from .policy import PolicyFiles, load_policy_dir

SWEEP_INTERVAL = 3600  # seconds: hourly
SWEEP_LEASE = timedelta(minutes=50)  # shorter than the interval, so a replica that died does not hold it

# A service's anonymise(db, cutoff, now, dry_run): the counts of what was due and what it anonymised
Anonymise = Callable[[Database[dict[str, Any]], datetime, datetime, bool], dict[str, int]]


def retention_months_field() -> fields.Integer:
    """The policy setting, validated at load like the others."""
    return fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=120))


class StrictBoolean(fields.Boolean):
    """true or false only: marshmallow's Boolean also takes 0, 1, "yes", ..., which the
    OpenAPI document (type: boolean) refuses (the fuzz test found {"dry_run": 0} accepted)."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class RetentionRunIn(Schema):
    dry_run = StrictBoolean(load_default=False)


class RetentionRunOut(Schema):
    run_id = fields.String(required=True)
    service = fields.String(required=True)
    at = fields.String(required=True, metadata={"format": "date-time"})
    by = fields.String(required=True, metadata={"description": "who ran it, or timer"})
    dry_run = fields.Boolean(required=True)
    months = fields.Integer(required=True)
    closed_before = fields.String(required=True, metadata={"format": "date-time"})
    candidates = fields.Integer(required=True, metadata={"description": "records due"})
    anonymised = fields.Integer(required=True, metadata={"description": "records this run anonymised"})
    incident_candidates = fields.Integer(metadata={"description": "resolution only"})
    incidents_anonymised = fields.Integer(metadata={"description": "resolution only"})
    seconds = fields.Float(required=True)


def months_before(now: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the month's last day when shorter)."""
    month_index = now.year * 12 + now.month - 1 - months
    year, month = divmod(month_index, 12)
    day = min(now.day, calendar.monthrange(year, month + 1)[1])
    return now.replace(year=year, month=month + 1, day=day)


def run(
    db: Database[dict[str, Any]],
    service: str,
    anonymise: Anonymise,
    *,
    now: datetime,
    months: int,
    dry_run: bool,
    by: str,
) -> dict[str, Any]:
    """Anonymise what closed before now - `months`; the run's record (also stored)."""
    started = time.monotonic()
    cutoff = months_before(now, months)
    counts = anonymise(db, cutoff, now, dry_run)
    record = {
        "_id": uuid.uuid4().hex,
        "service": service,
        "at": now,
        "by": by,
        "dry_run": dry_run,
        "months": months,
        "closed_before": cutoff,
        **counts,
        "seconds": round(time.monotonic() - started, 3),
    }
    db.retention_runs.insert_one(record)
    return record


def public(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **{k: v for k, v in record.items() if k != "_id"},
        "run_id": record["_id"],
        "at": record["at"].isoformat(),
        "closed_before": record["closed_before"].isoformat(),
    }


class Retention(DependencyProvider):
    """Declared with the service's anonymise function (db, cutoff, now, dry_run) -> counts;
    workers get that function. Declaring it gives the service RetentionAdmin (base.Service)."""

    def __init__(self, anonymise: Anonymise) -> None:
        self.anonymise = anonymise

    def get_dependency(self, worker_ctx: Any) -> Anonymise:
        return self.anonymise


class RetentionAdmin:
    """POST /retention/run, RPC run_retention and the hourly sweep, for a service that
    declares a Retention dependency `retention` and whose policy rules hold retention_months."""

    needs: ClassVar[Mapping[str, type]] = {"retention": Retention, "policy": PolicyFiles}
    # as the service's workers see them
    name: str
    store: Any
    policy: Any
    clock: Callable[[], datetime]
    access: Gate
    retention: Anonymise

    @operation(
        Op(
            "POST",
            "/retention/run",
            "Anonymise what closed more than retention_months ago now (the "
            "hourly sweep does it too); dry_run counts only. Every run is kept in retention_runs.",
            "retention.run",
            body=RetentionRunIn,
            responses={200: RetentionRunOut},
        )
    )
    def run_retention(self, data: dict[str, Any]) -> dict[str, Any]:
        caller = self.access.caller()
        caller.require("retention.run")
        request = RetentionRunIn().load(data)
        return public(self._run_retention(self.clock(), request["dry_run"], caller.user))

    @leased_timer(SWEEP_INTERVAL, lease="retention", ttl=SWEEP_LEASE)
    def retention_sweep(self, lease: Lease) -> None:
        self._run_retention(self.clock(), False, "timer")

    def _run_retention(self, now: datetime, dry_run: bool, by: str) -> dict[str, Any]:
        return run(
            self.store.db,
            self.name,
            self.retention,
            now=now,
            months=self.policy.current.rules["retention_months"],
            dry_run=dry_run,
            by=by,
        )


def command(
    service: str,
    anonymise: Anonymise,
    load_policy: Callable[[dict[str, Any], MallRegistry], Any],
    argv: Sequence[str] | None = None,
) -> int:
    """`python -m <service>.retention [--dry-run] [--config services/<service>/config.yml]`."""
    from nameko.cli.main import setup_yaml_parser

    parser = argparse.ArgumentParser(
        prog=f"python -m {service}.retention",
        description=f"Anonymise {service}'s records closed longer ago than retention_months (policy).",
    )
    parser.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")
    parser.add_argument("--config", default=f"services/{service}/config.yml")
    args = parser.parse_args(argv)
    setup_yaml_parser()  # ${ENV:default} in the config, as `nameko run` reads it
    with open(args.config, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    policy_dir = (config.get("MALLCARE") or {}).get("POLICY_DIR", "deploy/policy")
    policy = load_policy_dir(policy_dir, f"{service}.yml", load_policy)
    client: MongoClient[dict[str, Any]] = MongoClient(config["MONGO_URI"], tz_aware=True)
    try:
        concern = WriteConcern(w="majority" if "replicaSet=" in config["MONGO_URI"] else 1, j=True)
        db = client.get_database(config.get("MONGO_DATABASE") or service, write_concern=concern)
        record = run(
            db,
            service,
            anonymise,
            now=utc_now(),
            months=policy.rules["retention_months"],
            dry_run=args.dry_run,
            by=f"command:{os.environ.get('USER', 'unknown')}",
        )
    finally:
        client.close()
    print(json.dumps(public(record)))
    return 0
