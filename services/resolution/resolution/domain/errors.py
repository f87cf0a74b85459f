"""The domain's refusals. The service answers them as the client's errors: a
StateConflict as 409 CONFLICT (RPC: Conflict), NoAuthority as 403 FORBIDDEN (RPC:
Forbidden), each with its message as it is. Bad input is marshmallow's
ValidationError (422), as at the edge."""


class StateConflict(Exception):
    """The case's (or the incident's) state does not allow the action."""


class NoAuthority(Exception):
    """The actor's role may not do this, or not for this amount or level."""
