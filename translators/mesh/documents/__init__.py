"""One Kubernetes or Istio document in, one typed and validated object out.

``kinds.parse_object`` reads apiVersion, kind and metadata and hands the
document to the reader of its kind (``kubernetes``, ``service_entries``,
``policies``, ``authorization``, ``gateways``, ``sidecars``,
``virtual_services``). Readers share the field readers of ``fields`` and
``networking_fields``: none raises, each records every problem with its field
path, so one document reports all its errors at once.
"""
