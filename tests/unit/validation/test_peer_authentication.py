"""What a PeerAuthentication may hold, as Istio's ``ValidatePeerAuthentication`` decides it.

Each row is a ``spec`` in YAML, read as a whole document by ``parse_object``
(so unknown fields are refused too), and Istio's verdict: ``Accept`` (with a
fragment of a warning, if Istio warns) or ``Refuse`` at a field path with a
fragment of the reason. A comment names Istio's function and message. Rows
named ``pa_...`` are the probes of the validation research (pyistiod against
Istio).
"""

from __future__ import annotations

import pytest
import yaml
from verdicts import Accept, Refuse, check, document

from translators.mesh.documents.kinds import ParseResult
from translators.mesh.documents.security.peer_authentication import PeerAuthenticationObject
from translators.mesh.model.policies import MtlsMode

SELECTOR = "selector: {matchLabels: {app: reviews}}"

CASES = [
    # -- probes of the validation research -------------------------------------------------
    # "port level mTLS, if defined, must have at least one element" (and the CRD schema)
    ("pa_empty_port_level_no_selector", "{mtls: {mode: STRICT}, portLevelMtls: {}}",
     Refuse("spec.portLevelMtls", "at least one port")),
    ("pa_empty_port_level_with_selector",
     f"{{{SELECTOR}, mtls: {{mode: STRICT}}, portLevelMtls: {{}}}}",
     Refuse("spec.portLevelMtls", "at least one port")),
    # "mesh/namespace peer authentication cannot have port level mTLS"
    ("pa_port_level_no_selector", "{mtls: {mode: STRICT}, portLevelMtls: {8080: {mode: DISABLE}}}",
     Refuse("spec.portLevelMtls", "requires spec.selector.matchLabels")),
    # validateWorkloadSelector warns: "workload selector specified without labels"
    ("pa_selector_empty_match_labels", "{selector: {matchLabels: {}}, mtls: {mode: STRICT}}",
     Accept("has no matchLabels")),
    # validateWorkloadSelector: 'wildcard is not supported in selector: "app=*"'
    ("pa_selector_wildcard_value", "{selector: {matchLabels: {app: '*'}}, mtls: {mode: STRICT}}",
     Refuse("spec.selector.matchLabels.app", "wildcard is not supported in selector")),
    # -- selector (validateWorkloadSelector) -----------------------------------------------
    ("selector_wildcard_inside_value", "{selector: {matchLabels: {app: 'rev*'}}}",
     Refuse("spec.selector.matchLabels.app", "wildcard is not supported in selector")),
    ("selector_wildcard_key", "{selector: {matchLabels: {'app*': reviews}}}",
     Refuse("spec.selector.matchLabels.app*", "label key")),
    # 'empty key is not supported in selector'
    ("selector_empty_key", "{selector: {matchLabels: {'': reviews}}}",
     Refuse("spec.selector.matchLabels.", "label key")),
    ("selector_without_match_labels", "{selector: {}, mtls: {mode: PERMISSIVE}}",
     Accept("has no matchLabels")),
    ("selector_workload", f"{{{SELECTOR}, mtls: {{mode: STRICT}}}}", Accept()),
    # -- mtls -------------------------------------------------------------------------------
    ("namespace_wide_empty", "{}", Accept()),
    ("mtls_mode_lower_case", "{mtls: {mode: strict}}",
     Refuse("spec.mtls.mode", "must be one of UNSET, DISABLE, PERMISSIVE, STRICT")),
    ("mtls_unknown_field", "{mtls: {mod: STRICT}}", Refuse("spec.mtls.mod", 'did you mean "mode"')),
    # -- portLevelMtls ----------------------------------------------------------------------
    ("port_level_with_selector",
     f"{{{SELECTOR}, mtls: {{mode: STRICT}}, portLevelMtls: {{8080: {{mode: DISABLE}},"
     " '9090': {mode: PERMISSIVE}}}", Accept()),
    ("port_level_entry_unset", f"{{{SELECTOR}, portLevelMtls: {{8080: {{}}}}}}", Accept()),
    # the selector's labels, not the key, are what Istio checks for emptiness
    ("port_level_empty_match_labels",
     "{selector: {matchLabels: {}}, portLevelMtls: {8080: {mode: DISABLE}}}",
     Refuse("spec.portLevelMtls", "requires spec.selector.matchLabels")),
    # "port must be in range 1..65535"
    ("port_level_port_zero", f"{{{SELECTOR}, portLevelMtls: {{0: {{mode: DISABLE}}}}}}",
     Refuse("spec.portLevelMtls.0", "port number 1-65535")),
    ("port_level_port_name", f"{{{SELECTOR}, portLevelMtls: {{http: {{mode: DISABLE}}}}}}",
     Refuse("spec.portLevelMtls.http", "port number 1-65535")),
    ("port_level_duplicate",
     f"{{{SELECTOR}, portLevelMtls: {{8080: {{mode: DISABLE}}, '8080': {{mode: STRICT}}}}}}",
     Refuse("spec.portLevelMtls.8080", "duplicates port 8080")),
    ("port_level_not_a_map", f"{{{SELECTOR}, portLevelMtls: [8080]}}",
     Refuse("spec.portLevelMtls", "mapping of port number to mtls")),
]  # fmt: skip


def parse(spec: str) -> ParseResult:
    """``spec`` (YAML) as a whole PeerAuthentication document."""
    return document("security.istio.io/v1", "PeerAuthentication", yaml.safe_load(spec))


@pytest.mark.parametrize(("spec", "verdict"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_peer_authentication_verdict(spec: str, verdict: Accept | Refuse) -> None:
    check(parse(spec), verdict, PeerAuthenticationObject, quiet=True)


def test_port_level_modes_reach_the_model() -> None:
    result = parse(dict((name, spec) for name, spec, _ in CASES)["port_level_with_selector"])
    assert isinstance(result.obj, PeerAuthenticationObject)
    policy = result.obj.policy
    assert policy.mode is MtlsMode.STRICT
    assert policy.port_modes == ((8080, MtlsMode.DISABLE), (9090, MtlsMode.PERMISSIVE))
