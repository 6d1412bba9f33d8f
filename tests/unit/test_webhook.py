"""The admission webhook's answers, without sockets (pyistiod.webhook.review).

The same answers through a real API server are in ``tests/kube/test_kube_webhook.py``.
"""

from __future__ import annotations

import base64
from typing import Any

from kube_objects import virtual_service  # no namespace, as kubectl -n shop sends it

from pyistiod.webhook import configuration, review


def admission(obj: Any, operation: str = "CREATE", namespace: str = "shop") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {"uid": "u-1", "operation": operation, "namespace": namespace, "object": obj},
    }


def test_a_valid_object_is_allowed() -> None:
    answer = review(admission(virtual_service("r", "reviews", "/v1/.*")))
    assert answer["kind"] == "AdmissionReview"
    assert answer["response"] == {"uid": "u-1", "allowed": True}


def test_an_invalid_object_is_denied_naming_object_field_and_reason() -> None:
    response = review(admission(virtual_service("r", "reviews", "/v1(?=x)")))["response"]
    assert response["allowed"] is False and response["uid"] == "u-1"
    message = response["status"]["message"]
    assert message.startswith(
        "VirtualService shop/r: field spec.http[0].match[0].uri.regex is not a valid RE2 regex"
    )
    assert response["status"]["code"] == 400


def test_deletes_and_kinds_pyistiod_does_not_read_are_allowed() -> None:
    assert review(admission(virtual_service("r", "reviews", "(?=x)"), operation="DELETE"))[
        "response"
    ]["allowed"]
    other = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}
    assert review(admission(other))["response"]["allowed"]


def test_what_cannot_be_read_is_denied_with_the_reason() -> None:
    for body in (None, {}, {"request": "x"}, admission("not an object")):
        response = review(body)["response"]
        assert response["allowed"] is False
        assert response["status"]["message"]


def test_the_configuration_sends_exactly_the_istio_kinds_pyistiod_reads() -> None:
    config = configuration("https://127.0.0.1:15017/validate", b"-----BEGIN CERTIFICATE-----\n")
    (hook,) = config["webhooks"]
    assert hook["clientConfig"]["url"] == "https://127.0.0.1:15017/validate"
    assert base64.b64decode(hook["clientConfig"]["caBundle"]).startswith(b"-----BEGIN")
    rules = {r["apiGroups"][0]: set(r["resources"]) for r in hook["rules"]}
    assert rules == {
        "networking.istio.io": {
            "destinationrules", "gateways", "serviceentries", "sidecars",
            "virtualservices", "workloadentries",
        },
        "security.istio.io": {
            "authorizationpolicies", "peerauthentications", "requestauthentications",
        },
    }  # fmt: skip
    assert all(r["operations"] == ["CREATE", "UPDATE"] for r in hook["rules"])
    assert (hook["failurePolicy"], hook["sideEffects"]) == ("Fail", "None")


def test_warnings_go_back_with_an_allowed_object() -> None:
    obj = virtual_service("r", "reviews", "/v1/.*")
    obj["spec"]["http"][0]["mirrors"] = [{"destination": {"host": "reviews"}}]
    response = review(admission(obj))["response"]
    assert response["allowed"] is True
    (warning,) = response["warnings"]
    assert warning.startswith("spec.http[0].mirrors is not supported yet")
