"""Readers of the ``security.istio.io`` kinds: PeerAuthentication (``peer_authentication``)
and AuthorizationPolicy (``authorization``), both selecting workloads as ``selector`` reads."""
