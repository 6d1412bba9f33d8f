"""PeerAuthentication precedence: workload (port, then policy) > namespace > mesh > PERMISSIVE."""

from __future__ import annotations

import pytest

from translators.mesh.model.policies import MtlsMode, PeerAuthentication, Policies
from translators.mesh.model.services import labels_of
from translators.mesh.selection.peer_authentication import effective_mode

D, P, S, U = MtlsMode.DISABLE, MtlsMode.PERMISSIVE, MtlsMode.STRICT, MtlsMode.UNSET
WEB = labels_of({"app": "web", "version": "v1"})


def mesh(mode: MtlsMode) -> PeerAuthentication:
    return PeerAuthentication("istio-system", "default", mode=mode)


def namespace(mode: MtlsMode, ns: str = "shop", name: str = "default") -> PeerAuthentication:
    return PeerAuthentication(ns, name, mode=mode)


def workload(
    mode: MtlsMode, ports: tuple[tuple[int, MtlsMode], ...] = (), name: str = "web"
) -> PeerAuthentication:
    return PeerAuthentication("shop", name, labels_of({"app": "web"}), mode, ports)


CASES: list[tuple[str, list[PeerAuthentication], int, MtlsMode]] = [
    ("nothing: PERMISSIVE", [], 8080, P),
    ("mesh STRICT", [mesh(S)], 8080, S),
    ("mesh UNSET: default", [mesh(U)], 8080, P),
    ("namespace beats mesh", [mesh(S), namespace(D)], 8080, D),
    ("namespace UNSET inherits mesh", [mesh(S), namespace(U)], 8080, S),
    ("other namespace ignored", [namespace(D, ns="other")], 8080, P),
    ("workload beats namespace", [namespace(S), workload(D)], 8080, D),
    ("workload UNSET inherits namespace", [namespace(S), workload(U)], 8080, S),
    ("workload UNSET inherits mesh", [mesh(D), workload(U)], 8080, D),
    ("port beats workload", [workload(S, ((8080, D),))], 8080, D),
    ("port level for another port", [workload(S, ((9090, D),))], 8080, S),
    ("port UNSET inherits workload", [workload(S, ((8080, U),))], 8080, S),
    ("port UNSET, workload UNSET: namespace", [namespace(D), workload(U, ((8080, U),))], 8080, D),
    ("port beats mesh through UNSET workload", [mesh(S), workload(U, ((8080, P),))], 8080, P),
    ("first workload policy by name wins", [workload(D, name="b"), workload(S, name="a")], 80, S),
    ("first namespace policy by name wins", [namespace(S, name="z"), namespace(D, name="a")], 1, D),
    (
        "root-namespace selector policy does not reach other namespaces",
        [PeerAuthentication("istio-system", "sel", labels_of({"app": "web"}), D)],
        8080,
        P,
    ),
]


@pytest.mark.parametrize(
    ("policies", "port", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_precedence(policies: list[PeerAuthentication], port: int, expected: MtlsMode) -> None:
    built = Policies.build(peer_authentications=tuple(policies))
    assert effective_mode(built, "shop", WEB, port) is expected


def test_selector_must_match_labels() -> None:
    built = Policies.build(peer_authentications=(namespace(S), workload(D)))
    assert effective_mode(built, "shop", labels_of({"app": "db"}), 8080) is S


def test_result_is_never_unset() -> None:
    built = Policies.build(peer_authentications=(mesh(U), namespace(U), workload(U, ((1, U),))))
    assert effective_mode(built, "shop", WEB, 1) is P
