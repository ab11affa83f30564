#!/usr/bin/env python3
"""Test-bed stand-in for Backend.AI's license server binary (licensed.linux.amd64.bin).

    licensed.linux.amd64.bin --port 6099 --license-file FILE [--host 0.0.0.0]
    licensed.linux.amd64.bin --print-hwinfo

Serving: answers HTTP on the port (GET/HEAD /, /status, /health: a JSON status with the
license's fields) until SIGTERM. It refuses to start without a readable license file holding
`key = value` lines with at least `licensee`. --print-hwinfo prints the identifiers a real
license is usually tied to (host name, machine ID, MAC addresses, CPU, memory, disks) and exits.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NAME = "licensed (test-bed stand-in)"


def read_first(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return default


def hwinfo() -> dict:
    macs = {}
    for nic in sorted(Path("/sys/class/net").glob("*")):
        address = read_first(str(nic / "address"))
        if nic.name != "lo" and address and address != "00:00:00:00:00:00":
            macs[nic.name] = address
    cpu = ""
    for line in read_first("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = ""
    for line in read_first("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            memory = line.split(":", 1)[1].strip()
            break
    by_id = Path("/dev/disk/by-id")
    disks = sorted(p.name for p in by_id.iterdir()) if by_id.is_dir() else []
    return {
        "hostname": socket.gethostname(),
        "machine_id": read_first("/etc/machine-id"),
        "architecture": platform.machine(),
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "memory_total": memory,
        "mac_addresses": macs,
        "disk_ids": disks,
    }


def read_license(path: str) -> dict:
    fields = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        fields[key.strip()] = value.strip()
    if "licensee" not in fields:
        raise ValueError("no licensee in the license file")
    return fields


class Handler(BaseHTTPRequestHandler):
    server_version = "licensed-standin"
    sys_version = ""

    def answer(self, send_body: bool) -> None:
        if self.path.split("?", 1)[0] not in ("/", "/status", "/health"):
            status, body = 404, {"error": "not found"}
        else:
            status, body = 200, {"status": "ok", "service": NAME,
                                 "license": self.server.license,
                                 "since": self.server.started}
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (the http.server interface)
        self.answer(True)

    def do_HEAD(self):  # noqa: N802
        self.answer(False)

    def log_message(self, format, *args):  # noqa: A002
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=f"Backend.AI license server ({NAME})")
    parser.add_argument("--print-hwinfo", action="store_true",
                        help="print the hardware information a license is issued for, then exit")
    parser.add_argument("--host", default="0.0.0.0",  # noqa: S104 - a server for the cluster
                        help="address to listen on")
    parser.add_argument("--port", type=int, help="port to listen on")
    parser.add_argument("--license-file", help="the license (.lic) file")
    parser.add_argument("--log-level", default="INFO", help="accepted for compatibility")
    args = parser.parse_args(argv)
    if args.print_hwinfo:
        for key, value in hwinfo().items():
            print(f"{key}: {json.dumps(value) if not isinstance(value, str) else value}")
        return 0
    if not args.port or not args.license_file:
        parser.error("--port and --license-file are required to serve")
    try:
        license_fields = read_license(args.license_file)
    except (OSError, ValueError) as exc:
        print(f"error: cannot use license file {args.license_file}: {exc}", file=sys.stderr)
        return 1
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    server.license = license_fields
    server.started = datetime.now(timezone.utc).isoformat()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"{NAME} listening on {args.host}:{args.port} for {license_fields['licensee']}",
          flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
