"""Istio's default HTTP retry policy (``pilot/pkg/networking/core/route/retry``).

One place for the defaults that every outbound route without a
VirtualService ``retries`` gets, and that ``retries`` overrides.
"""

from __future__ import annotations

from envoy.config.route.v3 import route_components_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2
from google.protobuf import wrappers_pb2

DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
"""Istio's default ``retry_on`` (pilot/pkg/networking/core/route/retry ``DefaultPolicy``)."""

DEFAULT_RETRIABLE_STATUS_CODES = (503,)
"""Istio retries 503s by default unless ``EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY`` is set."""

PREVIOUS_HOSTS_PREDICATE = "envoy.retry_host_predicates.previous_hosts"


def default_retry_policy() -> route_components_pb2.RetryPolicy:
    """Istio's default retry policy: 2 retries on connection-level failures and 503s.

    Retries prefer hosts not yet tried (``previous_hosts``), picking up to 5
    times, as Istio's ``retry.DefaultPolicy``.
    """
    predicate = route_components_pb2.RetryPolicy.RetryHostPredicate(name=PREVIOUS_HOSTS_PREDICATE)
    predicate.typed_config.Pack(previous_hosts_pb2.PreviousHostsPredicate())
    return route_components_pb2.RetryPolicy(
        retry_on=DEFAULT_RETRY_ON,
        num_retries=wrappers_pb2.UInt32Value(value=2),
        retriable_status_codes=DEFAULT_RETRIABLE_STATUS_CODES,
        retry_host_predicate=[predicate],
        host_selection_retry_max_attempts=5,
    )
