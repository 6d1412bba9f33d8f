"""Certificates signed per second by the embedded CA, per workload key kind.

    python -m benchmarks.ca_signing [--seconds N] [--json OUT]

For each workload key kind (ECDSA P-256, RSA 2048) two phases run for N
seconds each, one after the other on one core:

  1. generation: a fresh workload key and its CSR (``generate_workload_key`` +
     ``make_csr``), the work the SDS server does on a workload's behalf;
  2. signing: ``ca.authority.sign`` over the CSRs made in phase 1, cycled.
     Each call parses the CSR, verifies its signature, checks its SAN and key,
     builds and signs the leaf: the CA's whole per-request cost. Key and CSR
     generation is outside this timed part.

The signing CA is an in-memory self-signed ECDSA P-256 root, pyistiod's
default. Rates are operations per wall-clock second (``time.perf_counter``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cryptography

from ca.authority import KeyKind, SigningBundle, generate_workload_key, make_csr, sign
from ca.spiffe import SpiffeId
from ca.storage import DEFAULT_ROOT_VALIDITY, build_root_cert

IDENTITY = SpiffeId("cluster.local", "default", "bench")
LEAF_TTL = timedelta(hours=24)
MAX_POOL = 64
"""Distinct CSRs kept for the signing phase (signing cost does not depend on which)."""


@dataclass(frozen=True, slots=True)
class KindResult:
    """One key kind's figures."""

    kind: str
    sign_count: int
    sign_seconds: float
    sign_per_s: float
    gen_count: int
    gen_seconds: float
    gen_per_s: float


def make_bundle(now: datetime) -> SigningBundle:
    """An in-memory self-signed ECDSA P-256 root CA."""
    key = generate_workload_key(KeyKind.ECDSA_P256)
    root = build_root_cert(key, "cluster.local", now, DEFAULT_ROOT_VALIDITY)
    return SigningBundle(signing_key=key, signing_cert=root, intermediates=(), roots=(root,))


def bench_generation(kind: KeyKind, seconds: float) -> tuple[list[bytes], int, float]:
    """Make keys and CSRs for ``seconds``; return (CSR pool, count, elapsed)."""
    pool: list[bytes] = []
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        csr = make_csr(generate_workload_key(kind), IDENTITY)
        count += 1
        if len(pool) < MAX_POOL:
            pool.append(csr)
        now = time.perf_counter()
        if now >= deadline:
            return pool, count, now - start


def bench_signing(
    bundle: SigningBundle, pool: list[bytes], now: datetime, seconds: float
) -> tuple[int, float]:
    """Sign CSRs from ``pool`` in a cycle for ``seconds``; return (count, elapsed)."""
    count = 0
    start = time.perf_counter()
    while True:
        for csr in pool:
            sign(bundle, csr, IDENTITY, LEAF_TTL, now)
            count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count, elapsed


def run_kind(bundle: SigningBundle, kind: KeyKind, now: datetime, seconds: float) -> KindResult:
    """Both phases for one key kind."""
    pool, gen_count, gen_s = bench_generation(kind, seconds)
    sign_count, sign_s = bench_signing(bundle, pool, now, seconds)
    return KindResult(
        kind=kind.value,
        sign_count=sign_count,
        sign_seconds=round(sign_s, 3),
        sign_per_s=round(sign_count / sign_s, 1),
        gen_count=gen_count,
        gen_seconds=round(gen_s, 3),
        gen_per_s=round(gen_count / gen_s, 1),
    )


def render(results: list[KindResult]) -> str:
    """The results as a small text table."""
    lines = [
        f"{'workload key':<12} {'signed/s':>10} {'us/sign':>9} {'key+CSR/s':>10} {'ms/gen':>8}",
    ]
    for r in results:
        lines.append(
            f"{r.kind:<12} {r.sign_per_s:>10.1f} {1e6 / r.sign_per_s:>9.1f} "
            f"{r.gen_per_s:>10.1f} {1e3 / r.gen_per_s:>8.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run every key kind, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per phase per kind")
    parser.add_argument("--json", type=Path, default=None, help="write results here as JSON")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)  # the benchmark's edge reads the clock once; sign() never does
    bundle = make_bundle(now)
    results = [run_kind(bundle, kind, now, args.seconds) for kind in KeyKind]
    print(render(results))
    if args.json is not None:
        report = {
            "benchmark": "ca_signing",
            "seconds_per_phase": args.seconds,
            "ca_key": KeyKind.ECDSA_P256.value,
            "python": platform.python_version(),
            "cryptography": cryptography.__version__,
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
