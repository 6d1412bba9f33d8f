"""RDS: route configurations for sidecars (``sidecar``) and gateways (``gateway``).

Both take a service's routes from ``virtual_service`` (a VirtualService, or
Istio's default route), built from the pieces in ``route_parts`` and the
default ``retry`` policy.
"""
