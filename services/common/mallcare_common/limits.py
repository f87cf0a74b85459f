"""Abuse limits on every public edge (issue 23): what a caller without a staff token may
send a service, counted per client address in each service process, before a worker
starts or a body is read (web.HttpEntrypoint applies them).

- Requests a minute from one address (PER_ADDRESS_PER_MINUTE): every request to a
  route anyone may use without signing in (the customer's pages, the WeChat callback,
  /health, /metrics), and every request without a staff token (`Authorization: Bearer`) to
  the other routes (a channel's or merchant's key, whatever else it sends, or no
  credential). Staff reach the services through the console's one address, so their tokens
  are not counted per address.
- Refused API keys a minute from one address (REFUSED_KEYS_PER_MINUTE): past them every
  request from that address that presents a key gets 429, the right key too, until the
  minute has passed (a guesser learns nothing from the answer).
- Refused tokens a minute from one address (REFUSED_TOKENS_PER_MINUTE, more: a console's
  staff whose tokens expired are refused too): the same for tokens, so that forged ones
  cannot be sent without end, each an audit record.
- A body's size (MAX_BODY_BYTES): 413 on the Content-Length before the body is read; a
  body without one is not read at all (werkzeug gives its worker an empty stream: 400).

Each key's own rate is its `per_minute` in the secrets file (auth.Access), and the portal
counts submissions and look-ups per address besides (intake.yml `portal`). Every refusal
of these, and every 401, is counted in mallcare_refused_total{service, edge, reason}.
"""

from typing import Any

from nameko.extensions import SharedExtension

from .auth import RateLimiter, TooManyRequests

MAX_BODY_CEILING = 64 * 1024  # what the JSON and form readers take at most, whatever the setting
DEFAULTS = {
    # a desk or the hotline's system behind one address submits a few complaints a minute;
    # a shopping centre's Wi-Fi puts many customers' phones behind one address
    "PER_ADDRESS_PER_MINUTE": 600,
    "REFUSED_KEYS_PER_MINUTE": 10,
    "REFUSED_TOKENS_PER_MINUTE": 60,
    "MAX_BODY_BYTES": MAX_BODY_CEILING,
}
RANGES = {
    "PER_ADDRESS_PER_MINUTE": (1, 1_000_000),
    "REFUSED_KEYS_PER_MINUTE": (1, 10_000),
    "REFUSED_TOKENS_PER_MINUTE": (1, 10_000),
    "MAX_BODY_BYTES": (1024, MAX_BODY_CEILING),
}


class OverAddressLimit(TooManyRequests):
    """One client address sent more than its limit (429)."""

    reason = "address"


class RefusedKeys(TooManyRequests):
    """One client address presented too many unknown or wrong keys (429)."""

    reason = "refused_keys"


class RefusedTokens(TooManyRequests):
    """One client address presented too many forged, expired or unknown tokens (429)."""

    reason = "refused_tokens"


def reason_of(status: int, exc: BaseException | None) -> str | None:
    """Why a request was refused, for mallcare_refused_total: None when it was not one of
    the refusals the limits are about (401, 413, 429)."""
    if status == 429:
        return getattr(exc, "reason", "key")  # a key over its own per_minute (auth.RateLimiter)
    return {401: "unauthenticated", 413: "body"}.get(status)


def setting(config: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    """MALLCARE.<name> as a whole number from low to high (config.yml has it from the
    environment as text); the service does not start with anything else."""
    value = (config.get("MALLCARE") or {}).get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = low - 1
    if not low <= number <= high:
        raise RuntimeError(f"MALLCARE_{name} {value!r} is not a number from {low} to {high}")
    return number


def forwarded_hops(config: dict[str, Any]) -> int:
    """MALLCARE.FORWARDED_HOPS: how many reverse proxies of ours stand before the service
    (web.client_address); 0 when clients reach it directly."""
    return setting(config, "FORWARDED_HOPS", 0, 0, 10)


class EdgeLimits(SharedExtension):
    """The limits above, one set per service process (every HTTP entrypoint shares it)."""

    def setup(self) -> None:
        config = self.container.config
        self.hops = forwarded_hops(config)
        self.per_address, self.refused_keys, self.refused_tokens, self.max_body_bytes = (
            setting(config, name, DEFAULTS[name], *RANGES[name])
            for name in (
                "PER_ADDRESS_PER_MINUTE",
                "REFUSED_KEYS_PER_MINUTE",
                "REFUSED_TOKENS_PER_MINUTE",
                "MAX_BODY_BYTES",
            )
        )
        self.requests = RateLimiter()
        self.refusals = RateLimiter()  # by "key:<address>" and "token:<address>"

    def admit(self, address: str, counted: bool, presents_key: bool, presents_token: bool = False) -> None:
        """Before the worker: 429 for an address past its refused keys or tokens (when this
        request presents one) or, for a counted request, past its requests a minute."""
        if presents_key:
            waiting = self.refusals.waiting(f"key:{address}", self.refused_keys)
            if waiting:
                raise RefusedKeys(f"too many refused API keys from this address; try again in {waiting} s", waiting)
        elif presents_token:
            waiting = self.refusals.waiting(f"token:{address}", self.refused_tokens)
            if waiting:
                raise RefusedTokens(f"too many refused tokens from this address; try again in {waiting} s", waiting)
        if counted:
            try:
                self.requests.take(address, self.per_address)
            except TooManyRequests as exc:
                raise OverAddressLimit(
                    f"this address is over {self.per_address} requests a minute; try again in {exc.retry_after} s",
                    exc.retry_after,
                ) from None

    def key_refused(self, address: str) -> None:
        """A key this address presented was refused (401): one of its refusals a minute."""
        self._refused(f"key:{address}", self.refused_keys)

    def token_refused(self, address: str) -> None:
        """A token this address presented was refused (401): one of its refusals a minute."""
        self._refused(f"token:{address}", self.refused_tokens)

    def _refused(self, bucket: str, per_minute: int) -> None:
        try:
            self.refusals.take(bucket, per_minute)
        except TooManyRequests:
            pass  # spent already: admit refuses the address's keys or tokens until the bucket refills
