"""Workload certificates issued on a proxy's behalf and renewed before they expire.

There is no node agent: pyistiod generates the workload key, signs it with
the CA core and serves key and chain over SDS, only to a proxy that proved the
identity (``ca.tokens``) on the TLS port. Renewal follows Istio's rule
(``ca.rotation``: half the lifetime, with a little jitter).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ca.authority import KeyKind, SigningBundle, generate_workload_key, make_csr, private_key_to_pem
from ca.authority import sign as sign_csr
from ca.rotation import draw_jitter, renew_at
from ca.spiffe import SpiffeId


@dataclass(frozen=True, slots=True)
class WorkloadCert:
    """One issued certificate with its key, and when to renew it."""

    identity: SpiffeId
    chain_pem: bytes
    key_pem: bytes
    root_pem: bytes
    serial_number: int
    not_after: datetime
    renew_at: datetime


class CertificateIssuer:
    """Issues workload certificates from one signing bundle. Thread-safe: no shared state."""

    def __init__(
        self,
        bundle: SigningBundle,
        ttl: timedelta,
        clock: Callable[[], datetime],
        key_kind: KeyKind = KeyKind.ECDSA_P256,
        rng: random.Random | None = None,
    ) -> None:
        self.bundle = bundle
        self.ttl = ttl
        self.clock = clock
        self.key_kind = key_kind
        self.rng = rng or random.Random()

    def issue(self, identity: SpiffeId) -> WorkloadCert:
        """A fresh key and certificate for ``identity`` (CPU-bound: run it off the loop)."""
        key = generate_workload_key(self.key_kind)
        now = self.clock()
        issued = sign_csr(self.bundle, make_csr(key, identity), identity, self.ttl, now)
        return WorkloadCert(
            identity=identity,
            chain_pem=issued.chain_pem,
            key_pem=private_key_to_pem(key),
            root_pem=issued.root_pem,
            serial_number=issued.serial_number,
            not_after=issued.not_after,
            # From the issue time, not the backdated notBefore: with a lifetime shorter than
            # the backdating, the certificate would be due for renewal the moment it is made.
            renew_at=renew_at(now, issued.not_after, jitter_fraction=draw_jitter(self.rng)),
        )
