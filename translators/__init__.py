"""Mesh config in, Envoy resources out: three stages, each a folder, read in this order.

- ``sources/``: where config comes from (a directory of YAML today) and when
  to read it again.
- ``mesh/``: documents read and validated as Istio does, assembled into one
  typed, frozen ``MeshModel``, checked across objects and analyzed; the
  selection rules (which policy applies to which proxy) read it.
- ``envoy/``: pure builders, model and proxy in, Envoy protobuf resources out,
  one area per xDS type.

The model is the hub: sources write it and builders read it, and it imports
neither (``make lint`` checks this with import-linter, see ``pyproject.toml``).
"""
