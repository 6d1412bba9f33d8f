"""The Envoy stage: model and proxy in, Envoy protobuf resources out, one area per xDS type.

- ``clusters`` (with ``cluster_policy``): CDS.
- ``endpoints``: EDS.
- ``listeners/``: LDS, for sidecars and gateways, with the RBAC filters.
- ``routes/``: RDS, for sidecars and gateways, from VirtualServices.
- ``tls/``: the transport sockets of clusters and listeners, and SDS secrets.
- ``bootstrap``: what a sidecar starts from; ``config_source``: ADS, named by all.
- ``resources``: every resource of one proxy, keyed by type URL.

Pure functions of the model and the proxy: no YAML, no documents, no I/O.
"""
