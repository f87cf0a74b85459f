"""HTTP for the gateways that speak it (requests, blocking: green under eventlet): an explicit
timeout, no redirects, and what the provider's answer says about retrying."""

from __future__ import annotations

from typing import Any

import requests

from . import Refused, Temporary


def request(method: str, url: str, *, timeout: float, **options: Any) -> requests.Response:
    """The provider's answer; Temporary when it cannot be reached or does not answer in time.
    The error names the address without its query, which may carry a secret or a token."""
    try:
        return requests.request(method, url, timeout=timeout, allow_redirects=False, **options)
    except requests.RequestException as error:
        raise Temporary(f"{method} {url}: {type(error).__name__}") from None


def transient(status: int) -> bool:
    """An HTTP status that may change by itself: 408, 429 and 5xx."""
    return status >= 500 or status in (408, 429)


def answer(response: requests.Response) -> dict[str, Any]:
    """The JSON object a provider answered, whatever its status but a transient one."""
    status = response.status_code
    if transient(status):
        raise Temporary(f"{response.url.split('?')[0]} answered HTTP {status}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        error = Refused if 400 <= status < 500 else Temporary
        raise error(f"{response.url.split('?')[0]} answered HTTP {status} without a JSON object")
    return body
