"""Edits under a config directory, reported as changes: when to read the files again.

Invariants:

1. Every batch of filesystem events below the root (files created, changed,
   deleted, in any subdirectory) is one ``Changes.record``; merging them into
   bursts is the debounce's job (``changes``).
2. Nothing is read, parsed or logged here: reading the files is
   ``files.read_dir``'s job.
"""

from __future__ import annotations

from pathlib import Path

import watchfiles

from translators.sources.changes import Changes


class DirectoryWatch:
    """Records a change for each batch of edits under ``root``."""

    def __init__(self, root: Path, changes: Changes) -> None:
        self.root = root
        self.changes = changes

    async def run(self) -> None:
        """Watch until cancelled."""
        async for _batch in watchfiles.awatch(self.root, debounce=20, step=5, recursive=True):
            self.changes.record()
