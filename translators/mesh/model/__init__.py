"""The typed mesh model: frozen, slotted, hashable dataclasses.

``mesh.MeshModel`` holds the whole mesh; its parts are ``services`` (services,
endpoints, workloads, labels), ``policies`` (PeerAuthentication,
AuthorizationPolicy, DestinationRule), ``traffic`` (a DestinationRule's
traffic settings), ``routing`` (VirtualServices), ``gateways`` and ``sidecars``.
``proxy`` is who asks for config; ``loopback`` the address plan of pods that
share one machine.
"""
