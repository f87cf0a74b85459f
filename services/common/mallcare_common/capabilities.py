"""What a service class must declare to take a shared capability by subclassing it
(web.HealthAndMetrics, web.PolicyAdmin, messaging.OutboxRelay, audit.AuditReads,
retention.RetentionAdmin). Each names the dependencies it uses, and `require` checks them
when the service class is created: a missing one is a TypeError at import that says what
to declare, not an AttributeError in the first request or tick."""
from types import FunctionType


def require(service_cls: type, capability: str, **needs: type | tuple[type, ...]) -> None:
    """`needs`: attribute -> the type (or tuple of types) its declaration on the class must be."""
    missing = [f"{name} ({_names(kind)})" for name, kind in needs.items()
               if not isinstance(getattr(service_cls, name, None), kind)]
    if missing:
        raise TypeError(f"{service_cls.__name__} takes {capability} but does not declare {', '.join(missing)}")


def _names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))


FUNCTION = FunctionType   # a staticmethod, as the class gives it
