"""Which mTLS mode a workload's sidecar enforces on a port (PeerAuthentication).

Istio's precedence, most specific first; the first level that says something
other than UNSET decides:

1. the workload policy: a PeerAuthentication in the workload's namespace
   whose ``selector`` matches its labels; its ``portLevelMtls`` entry for the
   port first, then its ``mtls.mode``;
2. the namespace policy: one in the workload's namespace without selector;
3. the mesh policy: one in ``ROOT_NAMESPACE`` without selector;
4. PERMISSIVE, Istio's default.

Where several policies match at one level Istio takes the oldest; the model
has no creation times, so the first by name wins here. A selector policy in
the root namespace is a workload policy for root-namespace workloads only
(Istio ignores it elsewhere). The result is never UNSET.
"""

from __future__ import annotations

from collections.abc import Iterator

from translators.mesh.model.policies import ROOT_NAMESPACE, MtlsMode, PeerAuthentication, Policies
from translators.mesh.model.services import Labels

DEFAULT_MODE = MtlsMode.PERMISSIVE
"""What a workload accepts when no PeerAuthentication says otherwise."""


def effective_mode(policies: Policies, namespace: str, labels: Labels, port: int) -> MtlsMode:
    """The mTLS mode of workload port ``port`` (namespace and labels given): never UNSET."""
    for mode in _levels(policies.peer_authentications, namespace, labels, port):
        if mode is not MtlsMode.UNSET:
            return mode
    return DEFAULT_MODE


def _levels(
    pas: tuple[PeerAuthentication, ...], namespace: str, labels: Labels, port: int
) -> Iterator[MtlsMode]:
    """The modes of each precedence level, most specific first (UNSET where a level is silent)."""
    workload = _first(
        pa for pa in pas if pa.namespace == namespace and pa.selector and pa.selector <= labels
    )
    if workload is not None:
        yield dict(workload.port_modes).get(port, MtlsMode.UNSET)
        yield workload.mode
    for ns in (namespace, ROOT_NAMESPACE):
        scoped = _first(pa for pa in pas if pa.namespace == ns and not pa.selector)
        if scoped is not None:
            yield scoped.mode


def _first(candidates: Iterator[PeerAuthentication]) -> PeerAuthentication | None:
    # ``Policies`` keeps policies sorted by (namespace, name): the first is the first by name.
    return next(candidates, None)
