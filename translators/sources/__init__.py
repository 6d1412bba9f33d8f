"""Where mesh config comes from, and when to read it again.

``files`` reads a directory of Kubernetes-shaped YAML into one ``MeshModel``
(through the mesh stage's readers and builder); ``directory_watch`` turns
edits under that directory into bursts, merged by Istio's ``debounce``. A
Kubernetes source will sit beside them and feed the same mesh stage.
"""
