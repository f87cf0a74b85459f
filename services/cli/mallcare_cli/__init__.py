"""The operator's side of mallcare: the `mallcare` command (cli) and the demo's example
complaint (examples). It depends on the services it operates; they and mallcare_common
never depend on it."""
