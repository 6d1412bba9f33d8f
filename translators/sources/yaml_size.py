"""How big a loaded YAML document is once its aliases are expanded, counted without expanding.

A YAML alias (``*a``) reuses a node: loaded, it is one shared Python object,
so nine anchors each referring nine times to the previous one load in
microseconds as a few dozen objects, yet anything that walks the document
(a field reader, an error message, the unknown-field check) visits 9^9
nodes: minutes of CPU and, rendered, gigabytes. Invariants:

1. ``expanded_nodes`` counts the nodes a full walk would visit, visiting
   each distinct object once (sizes of shared objects are memoized by
   identity), so its cost is linear in what was loaded, not in what it
   expands to.
2. Counting stops as soon as the count passes ``limit``: the answer is then
   ``limit + 1``, reached in bounded time.
3. A cycle (an alias to an enclosing node, which PyYAML can build) counts as
   over any limit: no reader could walk it to its end.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_DOCUMENT_NODES = 1_000_000
"""Nodes a document may expand to: about a hundred times the largest real Istio object
(an EndpointSlice of 1,000 endpoints is ~10,000 nodes)."""


def expanded_nodes(value: object, limit: int = MAX_DOCUMENT_NODES) -> int:
    """The nodes (mappings, lists, scalars) ``value`` holds once aliases are expanded,
    or ``limit + 1`` if more."""
    sizes: dict[int, int] = {}
    over = limit + 1

    def size(node: object, open_: frozenset[int]) -> int:
        if not isinstance(node, Mapping | list):
            return 1
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_:
            return over  # a cycle (invariant 3)
        inner = open_ | {id(node)}
        children = node.values() if isinstance(node, Mapping) else node
        total = 1 + (len(node) if isinstance(node, Mapping) else 0)  # keys count as nodes
        for child in children:
            total += size(child, inner)
            if total > limit:
                total = over
                break
        sizes[id(node)] = total
        return total

    return size(value, frozenset())
