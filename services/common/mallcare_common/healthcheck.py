"""Container health check: `python -m mallcare_common.healthcheck <service>` exits 0
when the service's /health answers 200. The port is read from the service's own
config.yml with nameko's env substitution, so it never disagrees with where the
service listens."""

import sys
import urllib.request

import yaml
from nameko.cli.main import setup_yaml_parser


def main(service: str) -> int:
    setup_yaml_parser()
    with open(f"services/{service}/config.yml", encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    port = str(config["WEB_SERVER_ADDRESS"]).rsplit(":", 1)[1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=8) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
