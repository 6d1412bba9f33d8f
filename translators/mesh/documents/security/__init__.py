"""Readers of the ``security.istio.io`` kinds: AuthorizationPolicy (``authorization``)."""
