"""Which rule applies to which service or proxy: Istio's selection and precedence.

Pure queries over the model, shared by the Envoy builders and the analysis:
``destination_rules`` and ``subsets`` (which DestinationRule, which subsets),
``traffic_policy`` (the merged policy of one cluster), ``peer_authentication``
(the mTLS mode of a port), ``request_authentication`` (the JWT rules a
workload enforces), ``virtual_services`` (which VirtualService routes a
service), ``sidecar_scope`` (what a proxy may reach) and ``gateway_binding``
(which Gateways a router runs and what binds to them).
"""
