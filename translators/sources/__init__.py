"""Where mesh config comes from, and when to read it again.

A source reads: ``files`` a directory of Kubernetes-shaped YAML (and
``directory_watch`` turns edits under it into bursts, merged by Istio's
``debounce``). ``loader`` puts every source's documents together, settles
which version of each object is in force and builds one ``MeshModel``. A
Kubernetes source will sit beside ``files`` and feed the same loader.
"""
