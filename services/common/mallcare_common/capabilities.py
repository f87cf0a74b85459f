"""What a service class must declare for the base (base.Service) and for each part it takes
(policy admin, outbox relay, audit reads, retention): `require` checks it when the class is
created, so a missing one is a TypeError at import that says what to declare, not an
AttributeError in the first request or tick."""


def require(service_cls: type, capability: str, **needs: type | tuple[type, ...]) -> None:
    """`needs`: attribute -> the type (or tuple of types) its declaration on the class must be."""
    missing = [
        f"{name} ({_names(kind)})"
        for name, kind in needs.items()
        if not isinstance(getattr(service_cls, name, None), kind)
    ]
    if missing:
        raise TypeError(f"{service_cls.__name__} takes {capability} but does not declare {', '.join(missing)}")


def _names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
