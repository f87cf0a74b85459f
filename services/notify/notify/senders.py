"""The gateway a policy entry names (notify.gateways.gateway_from), with the secrets it
takes read from the service's config or the secrets file (as auth.read_secret reads
ours), built once per entry and kept: a reloaded policy with another entry gets a new
gateway, an unchanged one keeps its connection state (WeChat's access token)."""

import json

from nameko.extensions import DependencyProvider

from mallcare_common.auth import read_secret

from .gateways import Gateway, gateway_from


class Gateways(DependencyProvider):
    """Workers get `gateway(entry)`: the policy's entry of a mall's channel, built."""

    def setup(self):
        self.built: dict[str, Gateway] = {}

    def get_dependency(self, worker_ctx):
        return self.gateway

    def gateway(self, entry) -> Gateway:
        key = json.dumps(entry, sort_keys=True)
        if key not in self.built:
            settings = {k: v for k, v in entry.items() if k != "secrets"}
            for setting, secret in entry.get("secrets", {}).items():  # a provider's, as long as it made it
                settings[setting] = read_secret(self.container.config, secret, min_bytes=1)
            self.built[key] = gateway_from(settings)
        return self.built[key]
