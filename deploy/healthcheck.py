"""Container healthcheck of a Salesrail service: exit 0 only when GET /readyz answers 200.

Standard library only (the slim image has no curl). With an argument, that URL is checked;
without, http://127.0.0.1:<port>/readyz, the port found as the service finds it:
SALESRAIL_<SERVICE>_PORT, else SALESRAIL_PORT, else the image's SERVICE_PORT.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def readyz_url() -> str:
    service = os.environ.get("SERVICE", "").upper().replace("-", "_")
    port = (
        (service and os.environ.get(f"SALESRAIL_{service}_PORT"))
        or os.environ.get("SALESRAIL_PORT")
        or os.environ.get("SERVICE_PORT")
    )
    if not port:
        sys.exit("healthcheck: no port (SERVICE_PORT is not set)")
    return f"http://127.0.0.1:{port}/readyz"


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else readyz_url()
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 (our own URL)
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:  # 503: up, but its bus or database is not reachable
        print(f"healthcheck: {url} answered {exc.code}: {exc.read(500)!r}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"healthcheck: {url} unreachable: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
