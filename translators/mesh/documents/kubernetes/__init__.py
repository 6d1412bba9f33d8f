"""Readers of the Kubernetes kinds the mesh is built from: ``v1`` Service and Pod,
``discovery.k8s.io/v1`` EndpointSlice (``objects``), and their ports (``ports``)."""
