"""The mesh stage: Kubernetes and Istio documents in, one typed ``MeshModel`` out.

Read in this order:

- ``documents/``: one document becomes one typed object, each field
  validated as Istio validates it (``kinds.parse_object`` finds the reader).
- ``builder`` (with ``service_endpoints``): the objects become the model,
  after ``checks`` has refused what spans objects (a duplicate name, a
  hostname defined twice).
- ``model/``: the frozen, hashable model every later stage reads, and the
  ``Proxy`` that asks for config.
- ``selection/``: which rule applies to which service or proxy, by Istio's
  precedence (DestinationRules, PeerAuthentication, VirtualServices,
  Sidecar scope, Gateways).
- ``analysis``: what ``istioctl analyze`` would warn about.

Nothing here imports the sources or the Envoy builders, nor any protobuf.
"""
