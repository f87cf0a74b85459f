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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, TypedDict

import jwt
import yaml
from marshmallow import Schema, ValidationError, fields, validate
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Request

from .policy import read_policy_file

ALL_MALLS = "*"
STAFF_ROLES = (
    "desk_staff",
    "handler",
    "supervisor",
    "store_manager",
    "regional_manager",
    "operations_director",
    "legal",
    "analyst",
    "admin",
)
ROLES = STAFF_ROLES + ("channel", "service")
ISSUER = "mallcare"
SERVICE_TOKEN_LIFETIME = timedelta(minutes=5)
LEEWAY_SECONDS = 30  # clock skew between the issuer and the services
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash
SIGN_IN = "sign in: send Authorization: Bearer <token> (staff) or X-Api-Key (channels)"


class AccessError(Exception):
    """The caller may not do this: the base of the three below (for expected_exceptions)."""


class Unauthenticated(AccessError):
    """No credentials, or credentials that are forged, expired or unknown (HTTP 401)."""


class Forbidden(AccessError):
    """The caller is known but their role or mall does not allow the action (HTTP 403)."""


class TooManyRequests(AccessError):
    """An API key over its rate (HTTP 429 with Retry-After)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Principal:
    user: str
    role: str
    malls: tuple[str, ...]  # mall ids, or (ALL_MALLS,)
    kind: str = "staff"  # staff, channel or service
    channel: str | None = None  # for channel keys: the one channel it may submit for
    permissions: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    @property
    def chain_wide(self) -> bool:
        return ALL_MALLS in self.malls

    def sees(self, mall_id: str) -> bool:
        return self.chain_wide or mall_id in self.malls

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    def require(self, permission: str, mall_id: str | None = None) -> "Principal":
        """Refuse (Forbidden) unless the role has `permission` and, when given, the mall is in scope."""
        if not self.may(permission):
            raise Forbidden(f"{self.user} ({self.role}) may not {permission}")
        if mall_id is not None and not self.sees(mall_id):
            raise Forbidden(f"{self.user} may not {permission} at {mall_id}")
        return self

    def list_mall(self, permission: str, mall_id: str | None = None) -> str | None:
        """For list queries: the mall to list (None: all malls, for the chain-wide), refusing
        a mall out of scope; staff of several malls name one."""
        self.require(permission, mall_id)
        if mall_id is not None or self.chain_wide:
            return mall_id
        if len(self.malls) == 1:
            return self.malls[0]
        raise ValidationError({"mall_id": [f"Name one of your malls: {', '.join(self.malls)}."]})


# --- tokens ---------------------------------------------------------------------------------


def issue_token(
    secret: str,
    user: str,
    role: str,
    malls: Iterable[str],
    lifetime: timedelta = timedelta(hours=12),
    now: datetime | None = None,
) -> str:
    now = now or datetime.now(timezone.utc)
    claims = {
        "iss": ISSUER,
        "sub": user,
        "role": role,
        "malls": list(malls),
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def read_token(secret: str, token: str) -> tuple[str, str, tuple[str, ...]]:
    """The token's (user, role, malls); Unauthenticated when forged, expired or incomplete."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid token: {exc}") from exc
    role, malls = claims.get("role"), claims.get("malls")
    if role not in ROLES or not isinstance(malls, list) or not malls or not all(isinstance(m, str) for m in malls):
        raise Unauthenticated("invalid token: role or malls missing")
    return claims["sub"], role, tuple(malls)


# --- channel API keys -------------------------------------------------------------------------


def key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class ApiKeySchema(Schema):
    id = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{2,63}$"))
    mall_id = fields.String(required=True)
    channel = fields.String(required=True)
    sha256 = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    per_minute = fields.Integer(load_default=120, validate=validate.Range(min=1, max=100000))


class ApiKey(TypedDict):
    """A channel key as ApiKeySchema loads it."""

    id: str
    mall_id: str
    channel: str
    sha256: str
    per_minute: int


class RateLimiter:
    """A token bucket per key, per service instance: `per_minute` requests a minute,
    with bursts up to the same number. A bucket left alone for a minute is full again and
    is forgotten, so that keys without end (the public pages' client addresses) keep no
    memory beyond the last minute's."""

    IDLE_SECONDS = 60.0

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self.buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, when counted)
        self.sweep_at = 1024  # buckets counted before the idle ones are looked for

    def take(self, key_id: str, per_minute: int, who: str | None = None) -> None:
        """One request of `key_id`; TooManyRequests naming `who` (the API key) when over."""
        now = self.monotonic()
        tokens, last = self.buckets.get(key_id, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - last) * per_minute / 60.0)
        if tokens < 1:
            self.buckets[key_id] = (tokens, now)
            retry_after = max(1, int((1 - tokens) * 60.0 / per_minute + 0.999))
            raise TooManyRequests(f"{who or f'API key {key_id}'} is over {per_minute} requests a minute", retry_after)
        self.buckets[key_id] = (tokens - 1, now)
        if len(self.buckets) >= self.sweep_at:
            self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < self.IDLE_SECONDS}
            self.sweep_at = max(1024, 2 * len(self.buckets))


# --- what each role may do ---------------------------------------------------------------------


class AccessSchema(Schema):
    version = fields.String(required=True)
    permissions = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String(validate=validate.OneOf(ROLES))), required=True
    )


class AccessPolicy(TypedDict):
    """access.yml as AccessSchema loads it."""

    version: str
    permissions: dict[str, list[str]]  # permission -> the roles that hold it


def load_access(path: str | os.PathLike[str]) -> AccessPolicy:
    """access.yml, validated; an InvalidPolicy naming the file and field when it cannot be used."""
    access: AccessPolicy = read_policy_file(path, AccessSchema().load)
    return access


def permissions_of(access: AccessPolicy, role: str) -> frozenset[str]:
    return frozenset(name for name, roles in access["permissions"].items() if role in roles)


# --- secrets --------------------------------------------------------------------------------


class MissingSecret(RuntimeError):
    """A secret the configuration or policy names is not set, or too short to be one."""


def read_secret(config: Mapping[str, Any], name: str, min_bytes: int = MIN_SECRET_BYTES) -> str:
    """config MALLCARE.<name> (set from the environment), else the environment's
    MALLCARE_<name> (a secret a policy names, a mall's WeChat token or mailbox password, has
    no line in config.yml), else <name> in the secrets file. Ours are random and at least
    MIN_SECRET_BYTES long; a provider's credential (an SMTP password, an API key's secret, a
    WeChat token) is as long as the provider made it."""
    value = (config.get("MALLCARE") or {}).get(name) or os.environ.get(f"MALLCARE_{name}")
    if not value:
        value = _secrets_file(config).get(name)
    if not value:
        raise MissingSecret(
            f"secret {name} is not set: set MALLCARE_{name} or put {name} in the file MALLCARE_SECRETS_FILE names"
        )
    if len(str(value).encode("utf-8")) < min_bytes:
        raise MissingSecret(f"secret {name} is shorter than {min_bytes} bytes (openssl rand -hex 32 makes one)")
    return str(value)


def env_secret(name: str) -> str:
    """A secret for a command run by hand: MALLCARE_<name>, else <name> in the secrets file."""
    return read_secret({}, name)


class Secret(DependencyProvider):
    """A secret's value (see read_secret), read once at start: a service without it does not start."""

    def __init__(self, name: str) -> None:
        self.name = name

    def setup(self) -> None:
        self.value = read_secret(self.container.config, self.name)

    def get_dependency(self, worker_ctx: Any) -> str:
        return self.value


class NamedSecrets(DependencyProvider):
    """Workers get `secret(name, min_bytes=32)`: a secret a policy names (a mall's WeChat
    token, its mailbox password), read when it is needed, so that a policy reload can name
    a new one; MissingSecret when it is not set."""

    def get_dependency(self, worker_ctx: Any) -> Callable[..., str]:
        return partial(read_secret, self.container.config)


def _secrets_file(config: Mapping[str, Any]) -> dict[str, Any]:
    path = (config.get("MALLCARE") or {}).get("SECRETS_FILE") or os.environ.get("MALLCARE_SECRETS_FILE")
    if not path:
        return {}
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def read_api_keys(config: Mapping[str, Any]) -> dict[str, ApiKey]:
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

    def setup(self) -> None:
        config = self.container.config
        policy_dir = (config.get("MALLCARE") or {}).get("POLICY_DIR", "deploy/policy")
        self.access = load_access(os.path.join(policy_dir, "access.yml"))  # InvalidPolicy stops the start
        self.secret = read_secret(config, "TOKEN_SECRET")
        self.api_keys = read_api_keys(config)
        self.limiter = RateLimiter()
        self.by_role = {role: permissions_of(self.access, role) for role in ROLES}

    def get_dependency(self, worker_ctx: Any) -> "Gate":
        return Gate(self, worker_ctx, worker_ctx.data.pop("authorization", None))

    def principal(
        self, user: str, role: str, malls: Iterable[str], kind: str = "staff", channel: str | None = None
    ) -> Principal:
        return Principal(user, role, tuple(malls), kind, channel, self.by_role[role])

    def permissions(self) -> dict[str, list[str]]:
        """access.yml's permission -> roles table (for the OpenAPI document)."""
        return self.access["permissions"]

    def from_token(self, token: str) -> Principal:
        user, role, malls = read_token(self.secret, token)
        kind = "service" if role == "service" else "channel" if role == "channel" else "staff"
        return self.principal(user, role, malls, kind)

    def from_api_key(self, presented: str) -> Principal:
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
    def __init__(self, provider: Access, worker_ctx: Any, credential: str | None) -> None:
        self.provider, self.worker_ctx, self.credential = provider, worker_ctx, credential

    def caller(self, request: Request | None = None) -> Principal:
        """The verified caller of this HTTP request (or, without one, of this RPC call or
        operation), noted for the request's log line, also when the action is then refused."""
        principal = self._verified(request)
        _CALLERS[self.worker_ctx] = principal.user
        return principal

    def _verified(self, request: Request | None) -> Principal:
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

    def channel_adapter(self, mall_id: str, channel: str) -> Principal:
        """The caller a channel adapter of this service acts as, once the channel proved itself
        by its own protocol (WeChat's signature; a mailbox of the mall's own): like a channel's
        API key, one mall and one channel; noted for the request's log line."""
        principal = self.provider.principal(f"{channel}:{mall_id}", "channel", [mall_id], "channel", channel)
        _CALLERS[self.worker_ctx] = principal.user
        return principal

    def permissions(self) -> dict[str, list[str]]:
        return self.provider.permissions()

    def as_service(self) -> "_AsService":
        """Context data for this worker's calls to other services: they see this service."""
        return _AsService(self)

    def service_token(self) -> str:
        name = self.provider.container.service_name
        return issue_token(
            self.provider.secret, f"service:{name}", "service", [ALL_MALLS], lifetime=SERVICE_TOKEN_LIFETIME
        )


class _AsService:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def __enter__(self) -> None:
        self.gate.worker_ctx.data["authorization"] = "Bearer " + self.gate.service_token()

    def __exit__(self, *exc: object) -> None:
        self.gate.worker_ctx.data.pop("authorization", None)


# --- issuing by hand ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, prog: str = "python -m mallcare_common.auth") -> None:
    """python -m mallcare_common.auth secrets > secrets.yml      (new random secrets, no keys yet)
    python -m mallcare_common.auth token --user E3501 --role handler --mall sh-xujiahui [--hours 12]
    python -m mallcare_common.auth api-key --id wechat-sh --mall sh-xujiahui --channel wechat"""
    import argparse
    import secrets as random_secrets

    parser = argparse.ArgumentParser(prog=prog)  # `mallcare token|api-key|secrets` wrap this one
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "secrets",
        help="a new secrets file: random TOKEN_SECRET, CUSTOMER_REF_SECRET, "
        "ANSWER_LINK_SECRET and an empty API_KEYS list",
    )
    token = commands.add_parser("token", help="a staff token, signed with TOKEN_SECRET")
    token.add_argument("--user", required=True)
    token.add_argument("--role", required=True, choices=STAFF_ROLES)
    token.add_argument("--mall", action="append", required=True, help="repeat for several; * for the chain")
    token.add_argument("--hours", type=float, default=12)
    key = commands.add_parser(
        "api-key", help="a new channel key: the key to give the channel, and its entry for API_KEYS in the secrets file"
    )
    key.add_argument("--id", required=True)
    key.add_argument("--mall", required=True)
    key.add_argument("--channel", required=True)
    key.add_argument("--per-minute", type=int, default=120)
    args = parser.parse_args(argv)
    if args.command == "secrets":
        fresh = {
            name: random_secrets.token_hex(32) for name in ("TOKEN_SECRET", "CUSTOMER_REF_SECRET", "ANSWER_LINK_SECRET")
        }
        print(yaml.safe_dump({**fresh, "API_KEYS": []}, sort_keys=False), end="")
    elif args.command == "token":
        print(issue_token(env_secret("TOKEN_SECRET"), args.user, args.role, args.mall, timedelta(hours=args.hours)))
    else:
        secret = random_secrets.token_urlsafe(32)
        entry = ApiKeySchema().load(
            {
                "id": args.id,
                "mall_id": args.mall,
                "channel": args.channel,
                "sha256": key_digest(secret),
                "per_minute": args.per_minute,
            }
        )
        print(f"key (give to the channel, shown once): {args.id}.{secret}")
        print(yaml.safe_dump({"API_KEYS": [entry]}, allow_unicode=True, sort_keys=False), end="")


if __name__ == "__main__":
    main()
