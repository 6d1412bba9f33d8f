"""``pyistiod proxy-status``: istioctl's table of every connected proxy and whether it is in sync.

Reads ``/debug/syncz`` from the monitoring port and prints, per proxy and type,
istioctl's words: ``SYNCED`` (the proxy ACKed the version last sent), ``STALE``
(sent, not ACKed yet), ``NACKED`` (the proxy refused the version last sent;
``/debug/syncz`` holds Envoy's message), ``NOT SENT``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

COLUMNS = ("cds", "lds", "eds", "rds", "sds")


def state(sync: Mapping[str, Any] | None) -> str:
    """One type's state in istioctl's words."""
    if not sync or not sync["sent"]["version"]:
        return "NOT SENT"
    if sync["synced"]:
        return "SYNCED"
    nack = sync.get("nack")
    if nack and nack["version"] == sync["sent"]["version"]:
        return "NACKED"
    return "STALE"


def table(proxies: Sequence[Mapping[str, Any]]) -> str:
    """The table: a header and a row per proxy, columns padded to fit."""
    rows = [["NAME", *(c.upper() for c in COLUMNS)]]
    rows += [[p["proxy"], *(state(p["types"].get(c)) for c in COLUMNS)] for p in proxies]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)  # fmt: skip


def fetch(monitoring_address: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """``/debug/syncz`` of the pyistiod at ``monitoring_address``; ``OSError`` saying why not."""
    url = f"http://{monitoring_address}/debug/syncz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body: list[dict[str, Any]] = json.loads(resp.read())
            return body
    except urllib.error.HTTPError as err:
        raise OSError(f"{url} answered {err.code}: is pyistiod serving yet?") from err
    except (urllib.error.URLError, TimeoutError) as err:
        reason = getattr(err, "reason", err)
        raise OSError(f"cannot reach pyistiod's monitoring port at {url}: {reason}") from err
