"""TLS in Envoy terms: transport sockets for clusters and listeners, and the SDS secrets they name.

``mtls`` is Istio's mutual TLS (auto mTLS upstream, PeerAuthentication
inbound); ``origination`` a DestinationRule's SIMPLE/MUTUAL TLS; ``gateway``
a Gateway server's TLS, whose ``credentialName`` secrets ``gateway_secrets``
serves; ``workload_secrets`` a workload's certificate and the mesh root.
"""
