"""Container healthcheck: exit 0 if URL answers 200 within the timeout, else 1 (standard library only).

    python3 /opt/triton-pooling/docker/healthcheck.py http://localhost:8000/v2/health/ready [TIMEOUT_S]

A script, not `python3 -c "..."`: podman 4 splits a healthcheck's arguments at spaces, so a one-line program
passed with -c arrives as `import` alone (measured here); no argument of this command has a space.
"""

import sys
import urllib.request


def main(argv: list[str]) -> int:
    url = argv[1]
    timeout = float(argv[2]) if len(argv) > 2 else 4.0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 0 if response.status == 200 else 1
    except Exception as e:  # refused, timed out, or an HTTP error status: unhealthy
        print(f"{url}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
