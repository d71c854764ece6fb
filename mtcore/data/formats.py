"""The file formats mtcore's readers know (:mod:`mtcore.data.readers`), in a module that imports nothing.

:class:`~mtcore.task.Task` checks the ``format`` of its ``local`` and ``sample`` sources against
this list when it is built, so a plugin naming a format no reader has fails when it loads.
"""

from __future__ import annotations

#: Formats :func:`mtcore.data.readers.iter_rows` reads (``"auto"`` picks one per file from its extension).
FORMATS = ("jsonl", "json", "csv", "tsv", "parquet", "conll")
AUTO = "auto"
