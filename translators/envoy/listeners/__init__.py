"""LDS: where a proxy accepts traffic (``sidecar``, ``gateway``), and the filters in its chains.

``l4_routes`` turns VirtualService ``tcp`` and ``tls`` routes into filter
chains; ``authz`` and ``rbac`` turn AuthorizationPolicies into RBAC filters.
"""
