"""The xDS ports of ``serve --workers N``, held by the supervisor for its workers only.

The workers listen on one port together with SO_REUSEPORT, and the kernel spreads new
connections over them. SO_REUSEPORT alone would also let a second, separate pyistiod
(or any process of the same user setting it) join the port and silently take a share
of the proxies. So the supervisor, before it starts a worker, holds each address:

1. a socket bound to the address with SO_REUSEPORT but never listening: it receives no
   connection, it turns port 0 into the concrete port the workers are given, and any
   process binding the port without SO_REUSEPORT (a single-process pyistiod, istiod,
   Go's ``net.Listen``) is refused by the kernel;
2. a lock named for the address (an abstract Unix socket, released by the kernel when
   the supervisor dies, however it dies): a second ``serve --workers N``, which does set
   SO_REUSEPORT, is refused by the lock before it binds anything.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field

from pyistiod.settings import host_port


@dataclass
class HeldPort:
    """One address held: its concrete ``host:port``, the bound socket and the lock."""

    address: str
    """``HOST:PORT`` with the port the kernel gave (never 0)."""
    _sockets: tuple[socket.socket, ...] = field(repr=False)

    def release(self) -> None:
        """Let the address go (the workers' own sockets keep listening)."""
        for sock in self._sockets:
            sock.close()


def hold(address: str) -> HeldPort:
    """Hold ``address`` for this process's workers; ``OSError`` naming it if it is taken."""
    host, port = host_port(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bound = socket.socket(family, socket.SOCK_STREAM)
    try:
        bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        bound.bind((host, port))
    except OSError as err:
        bound.close()
        raise OSError(f"cannot listen on {address} ({err.strerror})") from err
    port = bound.getsockname()[1]
    shown = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lock.bind(f"\0pyistiod-serve {shown}")
    except OSError as err:
        lock.close()
        bound.close()
        if err.errno == errno.EADDRINUSE:
            raise OSError(f"cannot listen on {shown}: another pyistiod serves it") from err
        raise OSError(f"cannot lock {shown} ({err.strerror})") from err
    return HeldPort(shown, (bound, lock))
