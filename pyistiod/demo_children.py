"""The demo's watch over the processes it starts: are its addresses free, has one exited, and why.

Invariants:

1. Nothing starts until every address the demo binds is free: a second demo
   fails at once, naming the address, instead of starting children that die.
2. A child that exits while the demo runs stops the demo: ``check`` raises
   ``ChildExited`` with the child's name, exit code and last log lines.
3. SIGTERM (and SIGHUP) stop the demo as Ctrl-C does, and no signal interrupts
   the stopping itself, so every child is stopped (``stopping``).
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType

from pyistiod.local_mesh import LocalMesh

Address = tuple[str, int]


class ChildExited(Exception):
    """A process the demo started has exited (invariant 2)."""

    def __init__(self, name: str, code: int, tail: list[str]) -> None:
        self.name, self.code, self.tail = name, code, tail
        super().__init__(f"{name} {exit_reason(code)}")

    def report(self) -> str:
        """The one-line reason, then the child's last log lines, indented."""
        lines = [f"{self}; its last log lines:", *(f"  | {line}" for line in self.tail)]
        return "\n".join(lines if self.tail else [f"{self} (its log is empty)"])


def exit_reason(code: int) -> str:
    """``exited with code N``, or ``was killed by SIGNAME`` for a negative Popen code."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def readable(line: str) -> str:
    """A JSON log line (pyistiod's, when not on a terminal) as ``level event key=value``."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict) or "event" not in entry:
        return line
    rest = " ".join(
        f"{k}={v}" for k, v in entry.items() if k not in ("event", "level", "timestamp")
    )
    return f"{entry.get('level', '')} {entry['event']} {rest}".strip()


def tail(path: Path, count: int = 10) -> list[str]:
    """The last ``count`` non-empty lines of ``path``, readable; none if it cannot be read."""
    try:
        text = path.read_bytes()[-65536:].decode(errors="replace")
    except OSError:
        return []
    return [readable(line) for line in text.splitlines() if line.strip()][-count:]


def check(mesh: LocalMesh) -> None:
    """Raise ``ChildExited`` for the first of ``mesh``'s processes that has exited."""
    for proc in mesh.procs:
        code = proc.poll()
        if code is not None:
            raise ChildExited(mesh.names[proc.pid], code, tail(mesh.log_of(proc)))


def taken(addresses: Iterable[Address]) -> Address | None:
    """The first of ``addresses`` something listens on (or that cannot be bound), else None.

    The probe sets ``SO_REUSEADDR``, as the servers it stands for do, so a
    connection lingering in TIME_WAIT from a previous run does not count as taken.
    """
    for address in addresses:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError:
                return address
    return None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise ``KeyboardInterrupt``, as Ctrl-C does (invariant 3)."""
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stopping(mesh: LocalMesh) -> None:
    """Stop every child of ``mesh``, with Ctrl-C and SIGTERM ignored meanwhile (invariant 3)."""
    caught = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in caught}
    try:
        mesh.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
