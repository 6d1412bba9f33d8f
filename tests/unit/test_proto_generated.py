"""The committed code generated from proto/ is what `make proto` produces now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
PROTOS = ["ca/gen/istio_ca.proto"]


def test_generated_code_is_current(tmp_path: Path) -> None:
    for proto in PROTOS:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{ROOT / 'proto'}",
                f"--python_out={tmp_path}",
                f"--pyi_out={tmp_path}",
                f"--grpc_python_out={tmp_path}",
                str(ROOT / "proto" / proto),
            ],
            check=True,
        )
        stem = proto.removesuffix(".proto")
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            fresh = (tmp_path / f"{stem}{suffix}").read_text()
            committed = (ROOT / f"{stem}{suffix}").read_text()
            assert fresh == committed, f"{stem}{suffix} is stale: run `make proto`"


def test_service_keeps_istios_names() -> None:
    from ca.gen import istio_ca_pb2

    service = istio_ca_pb2.DESCRIPTOR.services_by_name["IstioCertificateService"]
    assert service.full_name == "istio.v1.auth.IstioCertificateService"
    fields = {f.name: f.number for f in istio_ca_pb2.IstioCertificateRequest.DESCRIPTOR.fields}
    assert fields == {"csr": 1, "validity_duration": 3, "metadata": 4}
