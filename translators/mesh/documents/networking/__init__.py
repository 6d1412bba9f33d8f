"""Readers of the ``networking.istio.io`` kinds: VirtualService (``virtual_services``, its HTTP
routes in ``http_routes``), DestinationRule traffic policies (``traffic_policy``), Gateway
(``gateways``, with ``v1`` TLS Secrets), Sidecar (``sidecars``), ServiceEntry and WorkloadEntry
(``service_entries``); ``shared_fields`` holds the field readers they share (destinations,
string matches, durations, header operations, gateway references)."""
