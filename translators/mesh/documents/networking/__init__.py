"""Readers of the ``networking.istio.io`` kinds: VirtualService (``virtual_services``; an
HTTP route's matches and actions in ``http_routes``, its retries, fault, mirror and CORS in
``http_policies``), DestinationRule (``destination_rules``; its traffic policies in
``traffic_policy``, locality load balancing in ``locality``), Gateway (``gateways``, with
``v1`` TLS Secrets), Sidecar (``sidecars``), ServiceEntry and WorkloadEntry
(``service_entries``); ``shared_fields`` holds the field readers they share (destinations,
string matches, durations, header operations, gateway references)."""
