"""Who is calling, and what they may do.

- Staff carry signed tokens (`Authorization: Bearer <JWT>`): user, role, the malls they
  work at ("*" for the whole chain) and an expiry, signed with EdDSA (Ed25519) by the
  chain's sign-on, whose private key (SIGNING_KEY) only the sign-on holds (and `mallcare
  token`, for development). Services verify with the public keys of a JWKS document
  (MALLCARE.JWKS: a file or an https address), each key named by its id (kid
  `<identity>@<version>`), so that a key can be added before it signs and removed after
  its tokens expired: a rotation without downtime (KeySet, docs/security.md).
- Each mallcare service signs its calls to another with its own key (SERVICE_KEY_<NAME>,
  kid `service:<name>@...`), as a short-lived token: the verifier takes who it is from
  the key, never from the token's claims, and gives it the scopes access.yml lists for
  that identity, never a staff role. A subscriber (another internal service reading
  cases) carries an API key of its identity with the scopes and malls access.yml lists.
- Channel integrations carry API keys (`X-Api-Key: <key id>.<secret>`), each scoped
  to one mall and one channel and rate limited; the keys file keeps only the
  secret's SHA-256. A merchant (a tenant) signs in with a key of the same kind scoped
  to one mall and that one merchant (R7.5): it reads and answers only its own cases.

Every refused sign-in (no credential, a forged, expired or unknown one) is an audit record:
a `mallcare.audit` log line and `mallcare_sign_ins_refused_total`.

Secrets come from the environment (config MALLCARE.<NAME>, from MALLCARE_<NAME>), from a
file MALLCARE_<NAME>_FILE names (a Compose or Kubernetes secret), or from the YAML secrets
file MALLCARE_SECRETS_FILE names, never from the repo. What each role and identity may do
is policy data (access.yml); every HTTP and RPC entrypoint asks the `Access` dependency
for its caller and checks the permission and the mall before it reads or writes.
"""

import hashlib
import hmac
import json
import logging
import os
import re
import shutil
import threading
import time
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, TypedDict

import jwt
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from nameko.extensions import DependencyProvider
from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Request

from .metrics import SIGN_INS_REFUSED
from .policy import read_policy_file

log = logging.getLogger(__name__)
audit_log = logging.getLogger("mallcare.audit")  # refused sign-ins: one record each

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
ISSUER = "mallcare"
ALGORITHM = "EdDSA"  # Ed25519, the one algorithm tokens are verified with
SIGN_ON = "sign-on"  # the identity whose keys sign staff tokens
SERVICE_TOKEN_LIFETIME = timedelta(minutes=5)
LEEWAY_SECONDS = 30  # clock skew between the issuer and the services
MIN_SECRET_BYTES = 32  # ours are random, 32 bytes or more
SIGN_IN = "sign in: send Authorization: Bearer <token> (staff) or X-Api-Key (channels, merchants, subscribers)"
IDENTITY = r"^(service|subscriber):[a-z0-9][a-z0-9-]{1,62}$"


class AccessError(Exception):
    """The caller may not do this: the base of the three below (for expected_exceptions)."""


class Unauthenticated(AccessError):
    """No credentials, or credentials that are forged, expired or unknown (HTTP 401);
    `reason` (missing, malformed, unknown_key, expired, invalid) labels its audit record."""

    def __init__(self, message: str, reason: str = "missing") -> None:
        super().__init__(message)
        self.reason = reason


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
    kind: str = "staff"  # staff, channel, merchant, service or subscriber
    channel: str | None = None  # for channel keys: the one channel it may submit for
    merchant: str | None = None  # for merchant keys: the one merchant (at its one mall) it speaks for
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


class SigningKey:
    """A private Ed25519 key as a JWK (JSON, with its `kid`): the sign-on's SIGNING_KEY or a
    service's SERVICE_KEY_<NAME>. `mallcare keys new` makes one."""

    def __init__(self, jwk_json: str) -> None:
        try:
            jwk = json.loads(jwk_json)
            self.kid = jwk["kid"]
            if not isinstance(self.kid, str) or "@" not in self.kid or "d" not in jwk:
                raise ValueError("not a private key with a kid <identity>@<version>")
            self.key = jwt.PyJWK({**jwk, "alg": ALGORITHM}).key
        except (ValueError, KeyError, TypeError, jwt.PyJWKError) as exc:
            raise MissingSecret(f"not a private Ed25519 JWK with a kid (mallcare keys new makes one): {exc}") from exc
        self.identity = identity_of(self.kid)

    def sign(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(dict(claims), self.key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def public(self) -> dict[str, str]:
        """Its public half as a JWKS entry."""
        public = json.loads(OKPAlgorithm.to_jwk(self.key.public_key()))
        return {**public, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}


def identity_of(kid: str) -> str:
    """Whose key a key id names: `sign-on@2026-12` -> sign-on, `service:notify@2026-12` -> service:notify."""
    return kid.rpartition("@")[0]


def new_signing_key(identity: str, version: str | None = None) -> str:
    """A new private key for `identity` (sign-on, service:<name>), as the JWK SigningKey reads."""
    version = version or datetime.now(timezone.utc).strftime("%Y%m%d") + "-" + os.urandom(3).hex()
    private = json.loads(OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate()))
    return json.dumps({**private, "kid": f"{identity}@{version}"})


def issue_token(
    key: SigningKey,
    user: str,
    role: str,
    malls: Iterable[str],
    lifetime: timedelta = timedelta(hours=12),
    now: datetime | None = None,
) -> str:
    """A token for `user`: a staff token when `key` is the sign-on's, a service's own otherwise."""
    now = now or datetime.now(timezone.utc)
    claims = {
        "iss": ISSUER,
        "sub": user,
        "role": role,
        "malls": list(malls),
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    return key.sign(claims)


class KeySet:
    """The public keys tokens are verified with: a JWKS document from a file, or from the
    https address of the sign-on that publishes it (plain http only on this machine: anyone
    on the way could hand over a key of theirs). A file is read again as soon as it changed
    (its status is looked at, at most every STAT_SECONDS), so that a key added for a rotation
    signs at once and a key removed stops at once; an address is read again when a token
    names a key it does not hold (at most every REFRESH_SECONDS) and when older than
    `max_age` seconds. A document that cannot be read keeps the last one read."""

    REFRESH_SECONDS = 5.0
    STAT_SECONDS = 1.0

    def __init__(self, source: str, max_age: float = 300.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        remote = urllib.parse.urlsplit(source)
        if remote.scheme == "http" and remote.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise MissingSecret(f"JWKS {source}: only https, or http on this machine, can be trusted for keys")
        self.source, self.max_age, self.monotonic = source, max_age, monotonic
        self.remote = remote.scheme in ("http", "https")
        self.keys: dict[str, jwt.PyJWK] = {}
        self.document: dict[str, Any] = {"keys": []}
        self.read_at: float | None = None
        self.stat_at: float | None = None
        self.status: tuple[int, ...] | None = None
        self.lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK | None:
        if self._due(kid not in self.keys):
            self.refresh()
        return self.keys.get(kid)

    def _due(self, unknown: bool) -> bool:
        now = self.monotonic()
        if self.read_at is None:
            return True
        if self.remote:
            return now - self.read_at >= self.max_age or (unknown and now - self.read_at >= self.REFRESH_SECONDS)
        if self.stat_at is not None and now - self.stat_at < self.STAT_SECONDS:
            return False
        self.stat_at = now
        status = self._status()
        return status is not None and status != self.status  # gone for a moment: keep the keys read

    def _status(self) -> tuple[int, ...] | None:
        try:
            found = os.stat(self.source)
        except OSError:
            return None
        return (found.st_ino, found.st_mtime_ns, found.st_size)

    def current(self) -> dict[str, Any]:
        """The document, read again first if it changed (or is older than its max age)."""
        if self._due(False):
            self.refresh()
        return self.document

    def refresh(self) -> None:
        with self.lock:
            self.read_at = self.monotonic()
            self.status = None if self.remote else self._status()
            try:
                document = json.loads(self._read())
                keys = {}
                for entry in document["keys"]:
                    if entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519" or "d" in entry:
                        raise ValueError(f"key {entry.get('kid')!r} is not a public Ed25519 key")
                    keys[entry["kid"]] = jwt.PyJWK({**entry, "alg": ALGORITHM})
            except (OSError, ValueError, KeyError, TypeError, AttributeError, jwt.PyJWKError) as exc:
                log.error("signing keys not read from %s (the last ones read stay): %r", self.source, exc)
                return
            self.keys, self.document = keys, {"keys": [dict(entry) for entry in document["keys"]]}

    def _read(self) -> bytes:
        if self.remote:
            with urllib.request.urlopen(self.source, timeout=5) as answer:  # noqa: S310 (a configured address)
                body: bytes = answer.read(1024 * 1024)
                return body
        with open(self.source, "rb") as handle:
            return handle.read(1024 * 1024)


def verify_token(keys: KeySet, token: str) -> tuple[str, dict[str, Any]]:
    """Whose key signed the token (its identity) and its claims; Unauthenticated when it is
    forged, expired, incomplete or signed by a key the JWKS does not hold."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid token: {exc}", "malformed") from exc
    if not isinstance(kid, str) or (key := keys.key(kid)) is None:
        raise Unauthenticated("invalid token: not signed by a key of the sign-on's JWKS", "unknown_key")
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[ALGORITHM],  # never HS256: a public key is no shared secret
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("token expired", "expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid token: {exc}", "invalid") from exc
    return identity_of(kid), claims


def staff_claims(claims: Mapping[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    """A staff token's (user, role, malls); Unauthenticated when the role is no staff role."""
    role, malls = claims.get("role"), claims.get("malls")
    if (
        role not in STAFF_ROLES
        or not isinstance(malls, list)
        or not malls
        or not all(isinstance(m, str) for m in malls)
    ):
        raise Unauthenticated("invalid token: role or malls missing", "invalid")
    return str(claims["sub"]), role, tuple(malls)


# --- channel API keys -------------------------------------------------------------------------


def key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class ApiKeySchema(Schema):
    """A channel's key (`channel`, at `mall_id`), a merchant's (`merchant_id`, at `mall_id`)
    or a subscriber's (`identity`, whose malls and scopes access.yml lists): one of the three."""

    id = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{2,63}$"))
    mall_id = fields.String(load_default=None)
    channel = fields.String(load_default=None)
    merchant_id = fields.String(load_default=None, validate=validate.Length(min=1, max=32))
    identity = fields.String(load_default=None, validate=validate.Regexp(r"^subscriber:"))
    sha256 = fields.String(required=True, validate=validate.Regexp(r"^[0-9a-f]{64}$"))
    per_minute = fields.Integer(load_default=120, validate=validate.Range(min=1, max=100000))

    @validates_schema
    def _whose(self, data: dict[str, Any], **kwargs: Any) -> None:
        if sum(data.get(name) is not None for name in ("channel", "merchant_id", "identity")) != 1:
            raise ValidationError(
                "A key is a channel's (channel), a merchant's (merchant_id) or a subscriber's (identity).", "channel"
            )
        if (data.get("identity") is None) != (data.get("mall_id") is not None):
            raise ValidationError("A channel's or merchant's key names its mall; a subscriber's does not.", "mall_id")


class ApiKey(TypedDict):
    """A channel's, a merchant's or a subscriber's key as ApiKeySchema loads it."""

    id: str
    mall_id: str | None
    channel: str | None
    merchant_id: str | None
    identity: str | None
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
        tokens = self._tokens(key_id, per_minute, now)
        if tokens < 1:
            self.buckets[key_id] = (tokens, now)
            retry_after = self._wait(tokens, per_minute)
            raise TooManyRequests(f"{who or f'API key {key_id}'} is over {per_minute} requests a minute", retry_after)
        self.buckets[key_id] = (tokens - 1, now)
        if len(self.buckets) >= self.sweep_at:
            self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < self.IDLE_SECONDS}
            self.sweep_at = max(1024, 2 * len(self.buckets))

    def waiting(self, key_id: str, per_minute: int) -> int:
        """Seconds until `key_id` may be taken again, without taking it; 0 when it may now."""
        tokens = self._tokens(key_id, per_minute, self.monotonic())
        return 0 if tokens >= 1 else self._wait(tokens, per_minute)

    def _tokens(self, key_id: str, per_minute: int, now: float) -> float:
        tokens, last = self.buckets.get(key_id, (float(per_minute), now))
        return min(float(per_minute), tokens + (now - last) * per_minute / 60.0)

    @staticmethod
    def _wait(tokens: float, per_minute: int) -> int:
        return max(1, int((1 - tokens) * 60.0 / per_minute + 0.999))


# --- what each role may do ---------------------------------------------------------------------


class IdentitySchema(Schema):
    malls = fields.List(fields.String(validate=validate.Length(min=1, max=64)), load_default=[ALL_MALLS])
    scopes = fields.List(fields.String(), required=True)


class AccessSchema(Schema):
    version = fields.String(required=True)
    permissions = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String(validate=validate.OneOf(STAFF_ROLES + ("channel", "merchant")))),
        required=True,
    )
    identities = fields.Dict(
        keys=fields.String(validate=validate.Regexp(IDENTITY)), values=fields.Nested(IdentitySchema), load_default={}
    )

    @validates_schema
    def _scopes_are_permissions(self, data: dict[str, Any], **kwargs: Any) -> None:
        for name, identity in data.get("identities", {}).items():
            unknown = sorted(set(identity["scopes"]) - set(data.get("permissions", {})))
            if unknown:
                raise ValidationError(f"{name}: no permission is named {', '.join(unknown)}", "identities")


class Identity(TypedDict):
    malls: list[str]
    scopes: list[str]  # the permissions it holds


class AccessPolicy(TypedDict):
    """access.yml as AccessSchema loads it."""

    version: str
    permissions: dict[str, list[str]]  # permission -> the roles that hold it
    identities: dict[str, Identity]  # service:<name> or subscriber:<name> -> its malls and scopes


def load_access(path: str | os.PathLike[str]) -> AccessPolicy:
    """access.yml, validated; an InvalidPolicy naming the file and field when it cannot be used."""
    access: AccessPolicy = read_policy_file(path, AccessSchema().load)
    return access


def permissions_of(access: AccessPolicy, role: str) -> frozenset[str]:
    return frozenset(name for name, roles in access["permissions"].items() if role in roles)


def holders(access: AccessPolicy) -> dict[str, list[str]]:
    """permission -> the roles, then the identities, that hold it (for the OpenAPI documents)."""
    return {
        name: roles + [identity for identity, listed in access["identities"].items() if name in listed["scopes"]]
        for name, roles in access["permissions"].items()
    }


# --- secrets --------------------------------------------------------------------------------


class MissingSecret(RuntimeError):
    """A secret the configuration or policy names is not set, or too short to be one."""


def read_secret(config: Mapping[str, Any], name: str, min_bytes: int = MIN_SECRET_BYTES) -> str:
    """config MALLCARE.<name> (set from the environment), else the environment's
    MALLCARE_<name> (a secret a policy names, a mall's WeChat token or mailbox password, has
    no line in config.yml), else the file MALLCARE_<name>_FILE names (a Compose or Kubernetes
    secret), else <name> in the secrets file. Ours are random and at least MIN_SECRET_BYTES
    long; a provider's credential (an SMTP password, an API key's secret, a WeChat token) is
    as long as the provider made it."""
    mallcare = config.get("MALLCARE") or {}
    value = mallcare.get(name) or os.environ.get(f"MALLCARE_{name}")
    path = mallcare.get(f"{name}_FILE") or os.environ.get(f"MALLCARE_{name}_FILE")
    if not value and path:
        with open(path, encoding="utf-8") as handle:
            value = handle.read().strip()
    if not value:
        value = _secrets_file(config).get(name)
    if not value:
        raise MissingSecret(
            f"secret {name} is not set: set MALLCARE_{name} (or MALLCARE_{name}_FILE) "
            f"or put {name} in the file MALLCARE_SECRETS_FILE names"
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
        mallcare = config.get("MALLCARE") or {}
        policy_dir = mallcare.get("POLICY_DIR", "deploy/policy")
        self.access = load_access(os.path.join(policy_dir, "access.yml"))  # InvalidPolicy stops the start
        self.keys = KeySet(read_secret(config, "JWKS", min_bytes=1), float(mallcare.get("JWKS_MAX_AGE") or 300))
        if not self.keys.current()["keys"]:  # a wrong path would refuse every token of a healthy-looking service
            raise MissingSecret(f"no signing key could be read from the JWKS {self.keys.source}")
        self.api_keys = read_api_keys(config)
        unknown = sorted(
            {k["identity"] for k in self.api_keys.values() if k["identity"]} - set(self.access["identities"])
        )
        if unknown:
            raise RuntimeError(f"API_KEYS name identities access.yml does not list: {', '.join(unknown)}")
        self.identity = f"service:{self.container.service_name}"
        # a service signs its calls to others with its own key, if access.yml gives it scopes
        self.own_key = None
        if self.identity in self.access["identities"]:
            self.own_key = SigningKey(read_secret(config, f"SERVICE_KEY_{self.container.service_name.upper()}"))
            if self.own_key.identity != self.identity:
                raise MissingSecret(f"SERVICE_KEY_{self.container.service_name.upper()} is {self.own_key.kid}'s key")
        self.limiter = RateLimiter()
        self.by_role = {role: permissions_of(self.access, role) for role in STAFF_ROLES + ("channel", "merchant")}
        self.holders = holders(self.access)

    def get_dependency(self, worker_ctx: Any) -> "Gate":
        return Gate(self, worker_ctx, worker_ctx.data.pop("authorization", None))

    def principal(
        self,
        user: str,
        role: str,
        malls: Iterable[str],
        kind: str = "staff",
        channel: str | None = None,
        merchant: str | None = None,
    ) -> Principal:
        return Principal(user, role, tuple(malls), kind, channel, merchant, self.by_role[role])

    def of_identity(self, identity: str) -> Principal:
        """A service or subscriber: its malls and scopes as access.yml lists them. Its role is
        its identity (service:notify), no word of the staff's nor of a domain rule's."""
        listed = self.access["identities"][identity]
        kind = identity.partition(":")[0]
        return Principal(identity, identity, tuple(listed["malls"]), kind, permissions=frozenset(listed["scopes"]))

    def permissions(self) -> dict[str, list[str]]:
        """access.yml's permission -> roles and identities table (for the OpenAPI document)."""
        return self.holders

    def from_token(self, token: str) -> Principal:
        identity, claims = verify_token(self.keys, token)
        if identity == SIGN_ON:
            user, role, malls = staff_claims(claims)
            return self.principal(user, role, malls)
        # any other key signs only its own identity's calls, with its scopes, whatever the claims say
        if not identity.startswith("service:") or identity not in self.access["identities"]:
            raise Unauthenticated(f"invalid token: {identity or 'its key'} signs no tokens here", "unknown_key")
        if claims["sub"] != identity:
            raise Unauthenticated(f"invalid token: {identity}'s key signed a token for {claims['sub']}", "invalid")
        return self.of_identity(identity)

    def from_api_key(self, presented: str) -> Principal:
        key_id, _, secret = presented.partition(".")
        key = self.api_keys.get(key_id)
        if key is None or not hmac.compare_digest(key["sha256"], key_digest(secret)):
            raise Unauthenticated("unknown API key", "unknown_key")
        self.limiter.take(key_id, key["per_minute"])
        if key["identity"] is not None:
            return self.of_identity(key["identity"])
        mall = str(key["mall_id"])
        if key["merchant_id"] is not None:
            return self.principal(f"key:{key_id}", "merchant", [mall], "merchant", merchant=key["merchant_id"])
        return self.principal(f"key:{key_id}", "channel", [mall], "channel", key["channel"])


def credential_kind(request: Request | None, presented: str | None = None) -> str:
    """The kind of credential a request (or an RPC call's `presented` one) carries: api_key,
    bearer or none (for refused sign-ins' records and the limits on them)."""
    if request is not None:
        if request.headers.get("X-Api-Key"):
            return "api_key"
        presented = request.headers.get("Authorization", "")
    scheme = (presented or "").partition(" ")[0].lower()
    return "api_key" if scheme == "apikey" else "bearer" if scheme == "bearer" else "none"


def audit_refused(
    service: str, exc: Unauthenticated, credential: str, address: str, path: str, request: Request | None = None
) -> None:
    """The audit record of a refused sign-in: which kind of credential, why, from where (the
    client's address as the service's proxies give it, the path, X-Forwarded-For as sent; an
    RPC call has none of these). No token or key goes into it."""
    SIGN_INS_REFUSED.labels(service, credential, exc.reason).inc()
    forwarded = request.headers.get("X-Forwarded-For", "")[:200] if request is not None else ""
    audit_log.warning(
        "sign-in refused: %s",
        exc,
        extra={
            "audit": "sign_in_refused",
            "service": service,
            "credential": credential,
            "reason": exc.reason,
            "path": path,
            **({"address": address} if address else {}),
            **({"forwarded_for": forwarded} if forwarded else {}),
        },
    )


_CALLERS: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()


def caller_noted(worker_ctx: Any) -> str | None:
    """Who the worker found its caller to be (None if it did not ask): for the request's log line."""
    return _CALLERS.get(worker_ctx)


class Gate:
    def __init__(self, provider: Access, worker_ctx: Any, credential: str | None) -> None:
        self.provider, self.worker_ctx, self.credential = provider, worker_ctx, credential

    def caller(self, request: Request | None = None) -> Principal:
        """The verified caller of this HTTP request (or, without one, of this RPC call or
        operation), noted for the request's log line, also when the action is then refused. A
        refused sign-in is audited: an RPC call's here, an HTTP request's where the request
        ends (web.HttpEntrypoint, which knows the client's address)."""
        try:
            principal = self._verified(request)
        except Unauthenticated as exc:
            if not isinstance(self.worker_ctx.entrypoint, HttpRequestHandler):
                service = self.provider.container.service_name
                audit_refused(service, exc, credential_kind(None, self.credential), "", "rpc")
            raise
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

    def public_keys(self) -> dict[str, Any]:
        """The JWKS tokens are verified with, as last read (the sign-on publishes it)."""
        return self.provider.keys.current()

    def as_service(self) -> "_AsService":
        """Context data for this worker's calls to other services: they see this service."""
        return _AsService(self)

    def service_token(self) -> str:
        key, identity = self.provider.own_key, self.provider.identity
        if key is None:
            raise MissingSecret(f"{identity} has no scopes in access.yml, so no key to call other services with")
        return issue_token(key, identity, "service", [ALL_MALLS], lifetime=SERVICE_TOKEN_LIFETIME)


class _AsService:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def __enter__(self) -> None:
        self.gate.worker_ctx.data["authorization"] = "Bearer " + self.gate.service_token()

    def __exit__(self, *exc: object) -> None:
        self.gate.worker_ctx.data.pop("authorization", None)


# --- issuing by hand ----------------------------------------------------------------------------

# the services with a key of their own: those access.yml gives scopes, as each calls another (triage calls none)
SERVICES = ("intake", "resolution", "feedback", "analytics", "notify")


def write_jwks(path: str, document: Mapping[str, Any]) -> None:
    """Replace the JWKS file at once (services may read it at any moment)."""
    fresh = f"{path}.new"
    with open(fresh, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
    os.replace(fresh, path)


def read_jwks(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {"keys": []}
    with open(path, encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


def new_secrets(sign_on: bool = True, kept: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Random secrets and a private key for each service (and for the sign-on, where this
    machine stands in for it); what `kept` holds stays as it is (a secrets file of an earlier
    release: links sent and customer references keep working). The JWKS of the keys' public halves."""
    import secrets as random_secrets

    kept = {name: value for name, value in (kept or {}).items() if name != "TOKEN_SECRET"}  # before signing keys
    fresh = {
        name: kept.get(name) or random_secrets.token_hex(32) for name in ("CUSTOMER_REF_SECRET", "ANSWER_LINK_SECRET")
    }
    keys = ([("SIGNING_KEY", SIGN_ON)] if sign_on else []) + [
        (f"SERVICE_KEY_{service.upper()}", f"service:{service}") for service in SERVICES
    ]
    for name, identity in keys:
        fresh[name] = kept.get(name) or new_signing_key(identity)
    return {**fresh, **kept}, {"keys": [SigningKey(fresh[name]).public() for name, _ in keys]}


def public_entry(given: Mapping[str, Any]) -> dict[str, str]:
    """A JWKS entry from a key as someone gives it: a private key of ours (its public half), or
    the public key a sign-on publishes (Ed25519, with a kid `sign-on@<version>`)."""
    if "d" in given:
        return SigningKey(json.dumps(dict(given))).public()
    kid = given.get("kid")
    if given.get("kty") != "OKP" or given.get("crv") != "Ed25519" or not given.get("x"):
        raise ValueError("not an Ed25519 key (kty OKP, crv Ed25519, x)")
    if not isinstance(kid, str) or not identity_of(kid):
        raise ValueError("its kid names no identity: <identity>@<version>, e.g. sign-on@2026-12")
    return {"kty": "OKP", "crv": "Ed25519", "x": str(given["x"]), "kid": kid, "alg": ALGORITHM, "use": "sig"}


def main(argv: Sequence[str] | None = None, prog: str = "python -m mallcare_common.auth") -> None:
    """python -m mallcare_common.auth secrets --jwks .run/jwks.json > secrets.yml   (one file, for development)
    python -m mallcare_common.auth secrets --dir secrets/         (a file per secret, for Compose or Kubernetes)
    python -m mallcare_common.auth token --user E3501 --role handler --mall sh-xujiahui [--hours 12]
    python -m mallcare_common.auth keys new sign-on > signing-key.json; keys add jwks.json signing-key.json
    python -m mallcare_common.auth keys remove jwks.json 'sign-on@20261201-a1b2c3'
    python -m mallcare_common.auth api-key --id wechat-sh --mall sh-xujiahui --channel wechat
    python -m mallcare_common.auth api-key --id t233-sh --mall sh-xujiahui --merchant T-233
    python -m mallcare_common.auth api-key --id loyalty --subscriber subscriber:loyalty"""
    import argparse
    import secrets as random_secrets

    parser = argparse.ArgumentParser(prog=prog)  # `mallcare token|api-key|secrets|keys` wrap this one
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser(
        "secrets",
        help="new random secrets (CUSTOMER_REF_SECRET, ANSWER_LINK_SECRET), the sign-on's SIGNING_KEY, "
        "each service's SERVICE_KEY_<NAME>, the JWKS of their public keys and an empty API_KEYS list",
    )
    where = made.add_mutually_exclusive_group(required=True)
    where.add_argument("--jwks", help="write the JWKS here; the secrets file (stdout) names it")
    where.add_argument(
        "--dir",
        help="write each service's secret to a file of its own here (for Compose or Kubernetes), "
        "and the JWKS to public/jwks.json; no sign-on key unless --with-sign-on-key",
    )
    made.add_argument(
        "--complete",
        metavar="FILE",
        help="with --jwks: add what a secrets file of an earlier release lacks, keeping what it has (FILE.bak first)",
    )
    made.add_argument(
        "--with-sign-on-key",
        action="store_true",
        help="with --dir: a sign-on key too (signing_key), for a trial with no sign-on of your own",
    )
    token = commands.add_parser("token", help="a staff token, signed with the sign-on's SIGNING_KEY")
    token.add_argument("--user", required=True)
    token.add_argument("--role", required=True, choices=STAFF_ROLES)
    token.add_argument("--mall", action="append", required=True, help="repeat for several; * for the chain")
    token.add_argument("--hours", type=float, default=12)
    keys = commands.add_parser("keys", help="signing keys and the JWKS, for a rotation (docs/security.md)")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    new = key_commands.add_parser("new", help="a new private key (JWK) for the sign-on or a service, on stdout")
    new.add_argument("identity", help="sign-on, or service:<name>")
    add = key_commands.add_parser(
        "add", help="add a key to the JWKS file: a private key's public half, or a sign-on's public key (JWK)"
    )
    add.add_argument("jwks")
    add.add_argument("key", help="a file holding the key as JSON")
    remove = key_commands.add_parser("remove", help="remove a key from the JWKS file: its tokens stop working")
    remove.add_argument("jwks")
    remove.add_argument("kid")
    key = commands.add_parser(
        "api-key",
        help="a new channel's, merchant's or subscriber's key: the key to give, and its entry for API_KEYS",
    )
    key.add_argument("--id", required=True)
    key.add_argument("--mall", help="the channel's or merchant's mall")
    whose = key.add_mutually_exclusive_group(required=True)
    whose.add_argument("--channel")
    whose.add_argument("--merchant", help="a merchant of the mall's registry (malls.yml): it answers its own cases")
    whose.add_argument("--subscriber", help="an identity of access.yml (subscriber:<name>): its malls and scopes")
    key.add_argument("--per-minute", type=int, default=120)
    args = parser.parse_args(argv)
    if args.command == "secrets":
        if args.dir:
            fresh, jwks = new_secrets(sign_on=args.with_sign_on_key)
            os.makedirs(os.path.join(args.dir, "public"), mode=0o700, exist_ok=True)
            for name, value in fresh.items():
                path = os.path.join(args.dir, name.lower())
                with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
                    out.write(value)
                os.chmod(path, 0o600)  # one made before keeps its mode otherwise
            os.chmod(os.path.join(args.dir, "public"), 0o755)  # the public keys: every container reads them
            write_jwks(os.path.join(args.dir, "public", "jwks.json"), jwks)
            print(f"wrote {len(fresh)} secrets and public/jwks.json to {args.dir}")
        elif args.complete and os.path.exists(args.complete):
            with open(args.complete, encoding="utf-8") as handle:
                kept = yaml.safe_load(handle) or {}
            shutil.copy2(args.complete, args.complete + ".bak")
            fresh, jwks = new_secrets(kept=kept)
            write_jwks(args.jwks, jwks)
            os.chmod(args.complete, 0o600)  # it holds private keys now
            with open(os.open(args.complete, os.O_WRONLY | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
                yaml.safe_dump(
                    {**fresh, "JWKS": args.jwks, "API_KEYS": kept.get("API_KEYS") or []}, out, sort_keys=False
                )
            print(f"{args.complete}: completed (it was {args.complete}.bak); its keys' JWKS: {args.jwks}")
        else:
            fresh, jwks = new_secrets()
            write_jwks(args.jwks, jwks)
            print(yaml.safe_dump({**fresh, "JWKS": args.jwks, "API_KEYS": []}, sort_keys=False), end="")
    elif args.command == "token":
        print(
            issue_token(
                SigningKey(env_secret("SIGNING_KEY")), args.user, args.role, args.mall, timedelta(hours=args.hours)
            )
        )
    elif args.command == "keys":
        if args.keys_command == "new":
            if args.identity != SIGN_ON and not re.match(IDENTITY, args.identity):
                parser.error("the identity is sign-on or service:<name>")
            print(new_signing_key(args.identity))
        elif args.keys_command == "add":
            try:
                with open(args.key, encoding="utf-8") as handle:
                    public = public_entry(json.load(handle))
            except (ValueError, MissingSecret) as exc:
                parser.error(f"{args.key}: {exc}")
            jwks = read_jwks(args.jwks)
            write_jwks(args.jwks, {"keys": [k for k in jwks["keys"] if k.get("kid") != public["kid"]] + [public]})
            print(f"{public['kid']} is in {args.jwks}: it verifies as soon as the services read it again")
        else:
            jwks = read_jwks(args.jwks)
            kept = [k for k in jwks["keys"] if k.get("kid") != args.kid]
            if len(kept) == len(jwks["keys"]):
                parser.error(f"no key {args.kid} in {args.jwks}")
            write_jwks(args.jwks, {"keys": kept})
            print(f"{args.kid} removed from {args.jwks}: its tokens are refused once the services read it again")
    else:
        if (args.mall is None) != (args.subscriber is not None):
            parser.error("a channel's or merchant's key needs --mall; a subscriber's has none")
        secret = random_secrets.token_urlsafe(32)
        whom = (
            {"merchant_id": args.merchant}
            if args.merchant
            else {"identity": args.subscriber}
            if args.subscriber
            else {"channel": args.channel}
        )
        try:
            entry = ApiKeySchema().load(
                {
                    "id": args.id,
                    **({"mall_id": args.mall} if args.mall else {}),
                    **whom,
                    "sha256": key_digest(secret),
                    "per_minute": args.per_minute,
                }
            )
        except ValidationError as exc:
            parser.error(str(exc.messages))
        holder = "merchant" if args.merchant else "subscriber" if args.subscriber else "channel"
        print(f"key (give to the {holder}, shown once): {args.id}.{secret}")
        entry = {k: v for k, v in entry.items() if v is not None}  # a channel's, a merchant's or a subscriber's
        print(yaml.safe_dump({"API_KEYS": [entry]}, allow_unicode=True, sort_keys=False), end="")


if __name__ == "__main__":
    main()
