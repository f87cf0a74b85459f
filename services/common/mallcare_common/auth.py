"""Who is calling, and what they may do.

- Staff carry signed tokens (`Authorization: Bearer <JWT>`, HS256): user, role, the
  malls they work at ("*" for the whole chain) and an expiry. The chain's sign-on
  issues them with the same secret; `python -m mallcare_common.auth token` issues one
  by hand.
- Channel integrations carry API keys (`X-Api-Key: <key id>.<secret>`), each scoped
  to one mall and one channel and rate limited; the keys file keeps only the
  secret's SHA-256.
- Services call each other with a short-lived service token.

Secrets come from the environment (config MALLCARE.TOKEN_SECRET etc., from
MALLCARE_TOKEN_SECRET) or from the YAML secrets file MALLCARE_SECRETS_FILE names,
never from the repo. What each role may do is policy data (access.yml); every HTTP
and RPC entrypoint asks the `Access` dependency for its caller and checks the
permission and the mall before it reads or writes.
"""
import hashlib
import hmac
import os
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import yaml
from marshmallow import Schema, ValidationError, fields, validate
from nameko.extensions import DependencyProvider

from .policy import read_policy_file

ALL_MALLS = "*"
STAFF_ROLES = ("desk_staff", "handler", "supervisor", "store_manager", "regional_manager",
               "operations_director", "legal", "analyst", "admin")
ROLES = STAFF_ROLES + ("channel", "service")
ISSUER = "mallcare"
SERVICE_TOKEN_LIFETIME = timedelta(minutes=5)
LEEWAY_SECONDS = 30      # clock skew between the issuer and the services
MIN_SECRET_BYTES = 32    # RFC 7518 3.2: an HS256 key at least as long as the hash
SIGN_IN = "sign in: send Authorization: Bearer <token> (staff) or X-Api-Key (channels)"


class AccessError(Exception):
    """The caller may not do this: the base of the three below (for expected_exceptions)."""


class Unauthenticated(AccessError):
    """No credentials, or credentials that are forged, expired or unknown (HTTP 401)."""


class Forbidden(AccessError):
    """The caller is known but their role or mall does not allow the action (HTTP 403)."""


class TooManyRequests(AccessError):
    """An API key over its rate (HTTP 429 with Retry-After)."""

    def __init__(self, message, retry_after):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    user: str
    role: str
    malls: tuple           # mall ids, or (ALL_MALLS,)
    kind: str = "staff"    # staff, channel or service
    channel: str | None = None   # for channel keys: the one channel it may submit for
    permissions: frozenset = field(default=frozenset(), compare=False, repr=False)

    @property
    def chain_wide(self):
        return ALL_MALLS in self.malls

    def sees(self, mall_id):
        return self.chain_wide or mall_id in self.malls

    def may(self, permission):
        return permission in self.permissions

    def require(self, permission, mall_id=None):
        """Refuse (Forbidden) unless the role has `permission` and, when given, the mall is in scope."""
        if not self.may(permission):
            raise Forbidden(f"{self.user} ({self.role}) may not {permission}")
        if mall_id is not None and not self.sees(mall_id):
            raise Forbidden(f"{self.user} may not {permission} at {mall_id}")
        return self

    def list_mall(self, permission, mall_id=None):
        """For list queries: the mall to list (None: all malls, for the chain-wide), refusing
        a mall out of scope; staff of several malls name one."""
        self.require(permission, mall_id)
        if mall_id is not None or self.chain_wide:
            return mall_id
        if len(self.malls) == 1:
            return self.malls[0]
        raise ValidationError({"mall_id": [f"Name one of your malls: {', '.join(self.malls)}."]})


# --- tokens ---------------------------------------------------------------------------------

def issue_token(secret, user, role, malls, lifetime=timedelta(hours=12), now=None):
    now = now or datetime.now(timezone.utc)
    claims = {"iss": ISSUER, "sub": user, "role": role, "malls": list(malls),
              "iat": int(now.timestamp()), "exp": int((now + lifetime).timestamp())}
    return jwt.encode(claims, secret, algorithm="HS256")


def read_token(secret, token):
    """The token's (user, role, malls); Unauthenticated when forged, expired or incomplete."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER, leeway=LEEWAY_SECONDS,
                            options={"require": ["exp", "sub", "iss"]})
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid token: {exc}") from exc
    role, malls = claims.get("role"), claims.get("malls")
    if role not in ROLES or not isinstance(malls, list) or not malls or not all(isinstance(m, str) for m in malls):
        raise Unauthenticated("invalid token: role or malls missing")
    return claims["sub"], role, tuple(malls)


# --- channel API keys -------------------------------------------------------------------------

def key_digest(secret):
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class ApiKeySchema(Schema):
    id = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{2,63}$"))
    mall_id = fields.String(required=True)
    channel = fields.String(required=True)
    sha256 = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    per_minute = fields.Integer(load_default=120, validate=validate.Range(min=1, max=100000))


class RateLimiter:
    """A token bucket per key, per service instance: `per_minute` requests a minute,
    with bursts up to the same number."""

    def __init__(self, monotonic=time.monotonic):
        self.monotonic = monotonic
        self.buckets = {}

    def take(self, key_id, per_minute):
        now = self.monotonic()
        tokens, last = self.buckets.get(key_id, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - last) * per_minute / 60.0)
        if tokens < 1:
            self.buckets[key_id] = (tokens, now)
            retry_after = max(1, int((1 - tokens) * 60.0 / per_minute + 0.999))
            raise TooManyRequests(f"API key {key_id} is over {per_minute} requests a minute", retry_after)
        self.buckets[key_id] = (tokens - 1, now)


# --- what each role may do ---------------------------------------------------------------------

class AccessSchema(Schema):
    version = fields.String(required=True)
    permissions = fields.Dict(keys=fields.String(), values=fields.List(fields.String(validate=validate.OneOf(ROLES))),
                              required=True)


def load_access(path):
    """access.yml, validated; an InvalidPolicy naming the file and field when it cannot be used."""
    return read_policy_file(path, AccessSchema().load)


def permissions_of(access, role):
    return frozenset(name for name, roles in access["permissions"].items() if role in roles)


# --- secrets --------------------------------------------------------------------------------

def read_secret(config, name, min_bytes=MIN_SECRET_BYTES):
    """config MALLCARE.<name> (set from the environment), else <name> in the secrets file.
    Ours are random and at least MIN_SECRET_BYTES long; a provider's credential (an SMTP
    password, an API key's secret) is as long as the provider made it: min_bytes=1."""
    value = (config.get("MALLCARE") or {}).get(name)
    if not value:
        value = _secrets_file(config).get(name)
    if not value:
        raise RuntimeError(f"secret {name} is not set: set MALLCARE_{name} or put {name} in the file "
                           "MALLCARE_SECRETS_FILE names")
    if len(str(value).encode("utf-8")) < min_bytes:
        raise RuntimeError(f"secret {name} is shorter than {min_bytes} bytes (openssl rand -hex 32 makes one)")
    return str(value)


def env_secret(name):
    """A secret for a command run by hand: MALLCARE_<name>, else <name> in the secrets file."""
    return read_secret({"MALLCARE": {name: os.environ.get(f"MALLCARE_{name}")}}, name)


class Secret(DependencyProvider):
    """A secret's value (see read_secret), read once at start: a service without it does not start."""

    def __init__(self, name):
        self.name = name

    def setup(self):
        self.value = read_secret(self.container.config, self.name)

    def get_dependency(self, worker_ctx):
        return self.value


def _secrets_file(config):
    path = (config.get("MALLCARE") or {}).get("SECRETS_FILE") or os.environ.get("MALLCARE_SECRETS_FILE")
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def read_api_keys(config):
    """The channel keys from the secrets file's `API_KEYS` list, by key id."""
    try:
        keys = ApiKeySchema(many=True).load(_secrets_file(config).get("API_KEYS") or [])
    except ValidationError as exc:
        raise RuntimeError(f"API_KEYS in the secrets file are invalid: {exc.messages}") from exc
    return {key["id"]: key for key in keys}


# --- the dependency -------------------------------------------------------------------------

class Access(DependencyProvider):
    """Workers get a Gate: `gate.caller(request)` for HTTP, `gate.caller()` for RPC
    (the credential travels as context data `authorization`), `gate.as_service()`
    around calls to another service.

    The credential is taken out of the worker's context data (WorkerContext.data;
    `context_data` is a copy) when the worker starts, so the worker's own RPC calls do
    not forward it; the outbox dispatcher drops it from events too (it may read the
    context data before this dependency is injected)."""

    def setup(self):
        config = self.container.config
        policy_dir = (config.get("MALLCARE") or {}).get("POLICY_DIR", "deploy/policy")
        self.access = load_access(os.path.join(policy_dir, "access.yml"))   # InvalidPolicy stops the start
        self.secret = read_secret(config, "TOKEN_SECRET")
        self.api_keys = read_api_keys(config)
        self.limiter = RateLimiter()
        self.by_role = {role: permissions_of(self.access, role) for role in ROLES}

    def get_dependency(self, worker_ctx):
        return Gate(self, worker_ctx, worker_ctx.data.pop("authorization", None))

    def principal(self, user, role, malls, kind="staff", channel=None):
        return Principal(user, role, tuple(malls), kind, channel, self.by_role[role])

    def permissions(self):
        """access.yml's permission -> roles table (for the OpenAPI document)."""
        return self.access["permissions"]

    def from_token(self, token):
        user, role, malls = read_token(self.secret, token)
        kind = "service" if role == "service" else "channel" if role == "channel" else "staff"
        return self.principal(user, role, malls, kind)

    def from_api_key(self, presented):
        key_id, _, secret = presented.partition(".")
        key = self.api_keys.get(key_id)
        if key is None or not hmac.compare_digest(key["sha256"], key_digest(secret)):
            raise Unauthenticated("unknown API key")
        self.limiter.take(key_id, key["per_minute"])
        return self.principal(f"key:{key_id}", "channel", [key["mall_id"]], "channel", key["channel"])


_CALLERS: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def caller_noted(worker_ctx: Any) -> str | None:
    """Who the worker found its caller to be (None if it did not ask): for the request's log line."""
    return _CALLERS.get(worker_ctx)


class Gate:
    def __init__(self, provider, worker_ctx, credential):
        self.provider, self.worker_ctx, self.credential = provider, worker_ctx, credential

    def caller(self, request=None):
        """The verified caller of this HTTP request (or, without one, of this RPC call or
        operation), noted for the request's log line, also when the action is then refused."""
        principal = self._verified(request)
        _CALLERS[self.worker_ctx] = principal.user
        return principal

    def _verified(self, request):
        if request is not None:
            if request.headers.get("X-Api-Key"):
                return self.provider.from_api_key(request.headers["X-Api-Key"])
            credential = request.headers.get("Authorization", "")
        else:
            credential = self.credential or ""
        scheme, _, token = credential.partition(" ")
        if scheme.lower() == "apikey" and token:
            return self.provider.from_api_key(token.strip())
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(SIGN_IN)
        return self.provider.from_token(token.strip())

    def permissions(self):
        return self.provider.permissions()

    def as_service(self):
        """Context data for this worker's calls to other services: they see this service."""
        return _AsService(self)

    def service_token(self):
        name = self.provider.container.service_name
        return issue_token(self.provider.secret, f"service:{name}", "service", [ALL_MALLS],
                           lifetime=SERVICE_TOKEN_LIFETIME)


class _AsService:
    def __init__(self, gate):
        self.gate = gate

    def __enter__(self):
        self.gate.worker_ctx.data["authorization"] = "Bearer " + self.gate.service_token()

    def __exit__(self, *exc):
        self.gate.worker_ctx.data.pop("authorization", None)


# --- issuing by hand ----------------------------------------------------------------------------

def main(argv=None, prog="python -m mallcare_common.auth"):
    """python -m mallcare_common.auth secrets > secrets.yml      (new random secrets, no keys yet)
    python -m mallcare_common.auth token --user E3501 --role handler --mall sh-xujiahui [--hours 12]
    python -m mallcare_common.auth api-key --id wechat-sh --mall sh-xujiahui --channel wechat"""
    import argparse
    import secrets as random_secrets

    parser = argparse.ArgumentParser(prog=prog)   # `mallcare token|api-key|secrets` wrap this one
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("secrets", help="a new secrets file: random TOKEN_SECRET, CUSTOMER_REF_SECRET, "
                                        "ANSWER_LINK_SECRET and an empty API_KEYS list")
    token = commands.add_parser("token", help="a staff token, signed with TOKEN_SECRET")
    token.add_argument("--user", required=True)
    token.add_argument("--role", required=True, choices=STAFF_ROLES)
    token.add_argument("--mall", action="append", required=True, help="repeat for several; * for the chain")
    token.add_argument("--hours", type=float, default=12)
    key = commands.add_parser("api-key", help="a new channel key: the key to give the channel, and its entry "
                                              "for API_KEYS in the secrets file")
    key.add_argument("--id", required=True)
    key.add_argument("--mall", required=True)
    key.add_argument("--channel", required=True)
    key.add_argument("--per-minute", type=int, default=120)
    args = parser.parse_args(argv)
    if args.command == "secrets":
        fresh = {name: random_secrets.token_hex(32) for name in ("TOKEN_SECRET", "CUSTOMER_REF_SECRET",
                                                                 "ANSWER_LINK_SECRET")}
        print(yaml.safe_dump({**fresh, "API_KEYS": []}, sort_keys=False), end="")
    elif args.command == "token":
        print(issue_token(env_secret("TOKEN_SECRET"), args.user, args.role, args.mall, timedelta(hours=args.hours)))
    else:
        secret = random_secrets.token_urlsafe(32)
        entry = ApiKeySchema().load({"id": args.id, "mall_id": args.mall, "channel": args.channel,
                                     "sha256": key_digest(secret), "per_minute": args.per_minute})
        print(f"key (give to the channel, shown once): {args.id}.{secret}")
        print(yaml.safe_dump({"API_KEYS": [entry]}, allow_unicode=True, sort_keys=False), end="")


if __name__ == "__main__":
    main()
