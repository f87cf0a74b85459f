"""mallcare's thin shared package: event contracts, Mongo provider, messaging,
metrics, business calendar, mall registry and HTTP plumbing. Domain rules live in
the service that owns them, not here."""
