"""The garbage collector set up for a long-running server, once start-up is done.

Everything allocated while starting (modules, classes, functions, the app, the
container and what its resources built) lives until the process exits, yet
CPython's full collections traverse all of it again and again: on the delivery
path that is a pause of several milliseconds every few thousand messages, in
the p99. :func:`settle_heap` collects what start-up left behind, then moves the
survivors to the permanent generation (``gc.freeze()``), which the collector
never scans. Objects created afterwards are collected as usual.

Only the serve paths call it (``chatcore serve``, the benchmark's server): a
test process builds and drops many apps, and freezing there would keep them all.
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect start-up's garbage, then exempt the survivors from every later collection."""
    gc.collect()
    gc.freeze()


def set_thresholds(thresholds: tuple[int, int, int]) -> None:
    """Apply ``gc.set_threshold`` (generation 0 allocations, then 1 and 2 collection counts)."""
    gc.set_threshold(*thresholds)
