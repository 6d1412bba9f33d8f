"""``pyistiod proxy-status``: istioctl's table of every connected proxy and whether it is in sync.

Also the monitoring port's client, shared with ``proxy-config``: ``get_json``.

Reads ``/debug/syncz`` from the monitoring port and prints, per proxy and type,
istioctl's words: ``SYNCED`` (the proxy ACKed the version last sent), ``STALE``
(sent, not ACKed yet), ``NACKED`` (the proxy refused the version last sent),
``NOT SENT``; under the table, each NACK with Envoy's message (clipped), which
``/debug/syncz`` holds whole.
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


NACK_SHOWN = 300
"""Characters of Envoy's message shown under the table (``/debug/syncz`` has it whole)."""


def table(proxies: Sequence[Mapping[str, Any]]) -> str:
    """The table: a header and a row per proxy, columns padded to fit; then one line per
    NACKED cell with Envoy's message."""
    rows = [["NAME", *(c.upper() for c in COLUMNS)]]
    rows += [[p["proxy"], *(state(p["types"].get(c)) for c in COLUMNS)] for p in proxies]
    nacks = [
        f"{p['proxy']} {c.upper()} NACKED: {_one_line(p['types'][c]['nack']['message'])}"
        for p in proxies
        for c in COLUMNS
        if state(p["types"].get(c)) == "NACKED"
    ]
    return "\n".join([columns(rows), *(["", *nacks] if nacks else [])])


def _one_line(message: str) -> str:
    flat = " ".join(message.split())
    return flat if len(flat) <= NACK_SHOWN else flat[:NACK_SHOWN] + "..."


def columns(rows: Sequence[Sequence[str]]) -> str:
    """``rows`` (the first a header) as text columns, each padded to fit, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)  # fmt: skip


class NotFound(OSError):
    """The monitoring port answered 404: no such proxy (or path)."""


def get_json(monitoring_address: str, path: str, timeout: float = 5.0) -> Any:
    """``path`` of the pyistiod at ``monitoring_address``, as JSON; ``OSError`` saying why
    not in one line (``NotFound`` for a 404), for ``proxy-status`` and ``proxy-config``."""
    url = f"http://{monitoring_address}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as err:
        if err.code == 404:
            raise NotFound(f"{url} answered 404") from err
        raise OSError(f"{url} answered {err.code}: is pyistiod serving yet?") from err
    except (urllib.error.URLError, TimeoutError) as err:
        reason = getattr(err, "reason", err)
        raise OSError(f"cannot reach pyistiod's monitoring port at {url}: {reason}") from err
    except ValueError as err:  # a body that is not JSON: not pyistiod on that port
        raise OSError(f"{url} answered what is not JSON: is that pyistiod's port?") from err
    except OSError as err:  # the connection dropped mid-answer
        raise OSError(f"reading {url} failed: {err}") from err


def fetch(monitoring_address: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """``/debug/syncz`` of the pyistiod at ``monitoring_address``; ``OSError`` saying why not."""
    body: list[dict[str, Any]] = get_json(monitoring_address, "/debug/syncz", timeout)
    return body
