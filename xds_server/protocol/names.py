"""Resource-name lists held once, however many streams subscribe with them.

Every sidecar of a mesh where all proxies see all services subscribes to the same
endpoint names, a thousand of them, and a state-of-the-world ACK repeats the whole list.
Each stream kept its own copy: a tuple of fresh strings and a frozenset over them,
about 130 KB per stream (260 MB at 2,000 proxies). ``NameLists`` hands every stream the
same tuple and the same frozenset for equal contents. Invariants:

1. ``intern`` returns a value equal to its argument, so interning never changes what a
   stream is subscribed to: only which equal object it holds.
2. Lists shorter than ``min_length`` are returned as they are: sharing them saves less
   than the lookup costs.
3. Memory is bounded: at most ``max_entries`` values and ``max_names`` names held, the
   least recently used dropped first. A dropped value stays valid for the streams holding
   it; later equal lists are shared anew.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, TypeVar

Names = TypeVar("Names", tuple[str, ...], frozenset[str])


class NameLists:
    """Equal name tuples and name sets, held once (an LRU by count and by names)."""

    def __init__(
        self, *, min_length: int = 16, max_entries: int = 1024, max_names: int = 1_000_000
    ) -> None:
        self.min_length = min_length
        self.max_entries = max_entries
        self.max_names = max_names
        self.held = 0
        """Names in the values held now."""
        self._values: OrderedDict[object, Any] = OrderedDict()
        """Each held value, keyed by itself (a tuple never equals a frozenset)."""

    def intern(self, names: Names) -> Names:
        """The held value equal to ``names``, or ``names`` itself, now held."""
        if len(names) < self.min_length:
            return names
        values = self._values
        held: Names | None = values.get(names)
        if held is not None:
            values.move_to_end(names)
            return held
        values[names] = names
        self.held += len(names)
        while len(values) > 1 and (len(values) > self.max_entries or self.held > self.max_names):
            _, oldest = values.popitem(last=False)
            self.held -= len(oldest)
        return names

    def __len__(self) -> int:
        return len(self._values)


SHARED = NameLists()
"""The process's lists: the streams of every server in the process share them."""
