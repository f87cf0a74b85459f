"""Refusals a service's rules raise without knowing the web: plain exceptions, so a
rules module imports no edge. `web` answers them (409 CONFLICT, RPC exc_type
Conflict) as it answers every client error."""


class Conflict(Exception):
    """The request is valid but the resource's state does not allow it."""
