"""Where mesh config comes from, and when to read it again.

A source reads: ``files`` a directory of Kubernetes-shaped YAML (with
``directory_watch`` turning edits under it into bursts), ``kubernetes`` the
objects of an API server (list-then-watch). ``changes`` and ``debounce`` merge
change signals into bursts, as Istio debounces. ``loader`` puts every source's
documents together, settles which version of each object is in force and
builds one ``MeshModel``.
"""
