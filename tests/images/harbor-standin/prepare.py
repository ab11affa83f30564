"""Configuration step of the test-bed Harbor stand-in (runs inside the bundled image).

Reads /input/harbor.yml, applies the checks Harbor's own prepare step applies to the settings
the stand-in uses, writes /compose_location/docker-compose.yml and /config/core/env (read by
the fake and, for its log level, the registry) and makes data_volume's registry/ and
harbor-fake/ directories. The host directories are mounted as in Harbor's prepare container:
/data is data_volume, /hostfs is the host's root (read-only, to look at certificate files).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

IMAGE = os.environ["HARBOR_STANDIN_IMAGE"]
PLACEHOLDER_CERT = "/your/certificate/path"
PLACEHOLDER_KEY = "/your/private/key/path"
LOG_LEVELS = ("debug", "info", "warning", "error", "fatal")
# Python logging level of the fake -> log level of the distribution registry
REGISTRY_LOG_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warn", "ERROR": "error",
                       "CRITICAL": "error"}


def refuse(message: str) -> None:
    print(f"ERROR: {message}", file=sys.stderr)
    raise SystemExit(1)


def check(conf: dict) -> None:
    if not isinstance(conf, dict):
        refuse("harbor.yml is not a mapping")
    hostname = str(conf.get("hostname") or "")
    if not hostname or hostname == "reg.mydomain.com":
        refuse("Please specify hostname")
    if hostname in ("127.0.0.1", "localhost"):
        refuse(f"{hostname} can not be the hostname: clients must reach Harbor by it")
    if "_version" not in conf:
        refuse("harbor.yml has no _version: start from this installer's harbor.yml.tmpl")
    if not conf.get("harbor_admin_password"):
        refuse("harbor_admin_password is not set")
    port = (conf.get("http") or {}).get("port")
    if not isinstance(port, int) or not 0 < port < 65536:
        refuse(f"http.port must be a port number, not {port!r}")
    if not str(conf.get("data_volume") or "").startswith("/"):
        refuse("data_volume must be an absolute path")
    level = ((conf.get("log") or {}).get("level") or "info").lower()
    if level not in LOG_LEVELS:
        refuse("log level must be one of " + ", ".join(LOG_LEVELS))
    https = conf.get("https")
    if https:
        cert, key = https.get("certificate"), https.get("private_key")
        if not cert or cert == PLACEHOLDER_CERT:
            refuse("The protocol is https but https.certificate is not set")
        if not key or key == PLACEHOLDER_KEY:
            refuse("The protocol is https but https.private_key is not set")
        for path in (cert, key):
            if not Path("/hostfs" + path).is_file():
                refuse(f"{path} does not exist on the host")
        refuse("this test-bed stand-in serves HTTP only: remove the https section of harbor.yml")


def main() -> int:
    conf = yaml.safe_load(Path("/input/harbor.yml").read_text(encoding="utf-8"))
    check(conf)
    port = conf["http"]["port"]
    data_volume = conf["data_volume"]
    level = ((conf.get("log") or {}).get("level") or "info").upper()
    if level == "FATAL":
        level = "CRITICAL"

    Path("/data/harbor-fake").mkdir(parents=True, exist_ok=True)
    Path("/data/registry").mkdir(parents=True, exist_ok=True)
    core = Path("/config/core")
    core.mkdir(parents=True, exist_ok=True)
    env = core / "env"
    fd = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"HARBOR_ADMIN_PASSWORD={conf['harbor_admin_password']}\n")
        handle.write(f"EXT_ENDPOINT=http://{conf['hostname']}:{port}\n")
        handle.write(f"REGISTRY_LOG_LEVEL={REGISTRY_LOG_LEVELS[level]}\n")
    os.chmod(env, 0o600)
    print(f"Generated configuration file: {env}")

    probe = ("import urllib.request; "
             "urllib.request.urlopen('http://127.0.0.1:8080/api/v2.0/ping', timeout=3)")
    compose = {
        "services": {
            "core": {
                "image": IMAGE,
                "container_name": "harbor-core",
                "restart": "always",
                "env_file": ["./common/config/core/env"],
                # nginx (port 8080), the registry and the Harbor API fake; the arguments are
                # the fake's.
                "command": [
                    "/opt/harbor-fake/entrypoint.sh",
                    "--state-file", "/data/harbor-fake/state.json",
                    "--auth-failure-delay", "1.5", "--log-level", level,
                ],
                "stop_grace_period": "20s",
                "volumes": [f"{data_volume}:/data"],
                "ports": [f"{port}:8080"],
                "healthcheck": {
                    "test": ["CMD", "python3", "-c", probe],
                    "interval": "5s",
                    "timeout": "5s",
                    "retries": 20,
                },
                "logging": {"driver": "json-file",
                            "options": {"max-size": "10m", "max-file": "3"}},
            },
        },
    }
    out = Path("/compose_location/docker-compose.yml")
    out.write_text("# Generated by prepare (test-bed Harbor stand-in) from harbor.yml.\n"
                   + yaml.safe_dump(compose, sort_keys=False), encoding="utf-8")
    print(f"Generated configuration file: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
