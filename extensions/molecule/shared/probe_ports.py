"""Probe TCP ports from outside a host: prints a JSON map "addr:port" -> open|refused|timeout.

Usage: probe_ports.py ADDR:PORT [ADDR:PORT ...]
"""
import json
import socket
import sys


def probe(addr: str, port: int, timeout: float = 3.0) -> str:
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except (socket.timeout, TimeoutError):
        return "timeout"
    except OSError as exc:
        return f"error: {exc.strerror or exc}"


def main() -> None:
    results = {}
    for target in sys.argv[1:]:
        addr, port = target.rsplit(":", 1)
        results[target] = probe(addr, int(port))
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
