"""One Kubernetes or Istio document in, one typed and validated object out.

``kinds.parse_object`` reads apiVersion, kind and metadata (``meta``), refuses
fields Istio's schema does not know (``known_fields``) and hands the document
to the reader of its kind, in a folder per API group: ``kubernetes/``
(Service, EndpointSlice, Pod), ``networking/`` (networking.istio.io kinds and
TLS Secrets), ``security/`` (security.istio.io kinds). Readers share the field
readers of ``fields`` and Istio's host rules of ``hosts``: none raises, each
records every problem with its field path, so one document reports all its
errors at once.
"""
