"""The Kubernetes source: the API server's objects, followed by list-then-watch.

``resources`` names what is watched and where the API serves it;
``reflector`` is the state of one list-then-watch (no I/O); ``watch`` the
loop that talks to the API server through kubernetes-asyncio; ``source``
puts the reflectors together and hands their objects to the ``Loader`` as
documents, as the file source does with files.
"""
