"""The protocol core stays sans-IO: no grpc, asyncio, logging or clocks (STYLE.md, ring 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import xds_server.protocol

FORBIDDEN = {"grpc", "asyncio", "logging", "structlog", "time", "os", "socket", "prometheus_client"}
CORE = Path(xds_server.protocol.__file__).parent


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_protocol_core_imports_no_io() -> None:
    files = sorted(CORE.glob("*.py"))
    assert len(files) >= 5
    for path in files:
        bad = imported_roots(path) & FORBIDDEN
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import asyncio\nfrom grpc import aio\n")
    assert imported_roots(sample) >= {"asyncio", "grpc"}
