"""The garbage collector set up for a long-running server, once start-up is done.

Everything allocated while starting (modules, classes, functions, the app, the
container and what its resources built) lives until the process exits, yet
CPython's full collections traverse all of it again and again: on the delivery
path that is a pause of several milliseconds every few thousand messages, in
the p99. :func:`settle_heap` collects what start-up left behind, then moves the
survivors to the permanent generation (``gc.freeze()``), which the collector
never scans. Objects created afterwards are collected as usual.

It also widens the collection thresholds (:data:`SERVER_THRESHOLDS`): a
generation-0 collection every 20,000 net allocations instead of 700, the older
generations after 50 younger ones instead of 10. In three side-by-side runs of
the benchmark this cut CPU per message at 600 msg/s by 3-9 % with no worse
p99 (bench/RESULTS.md, issue 16 follow-up). Its memory cost, garbage cycles that
wait longer before they are freed, was not measured.

Only the serve paths call it (``chatcore serve``, the benchmark's server): a
test process builds and drops many apps, and freezing there would keep them all.
"""

from __future__ import annotations

import gc
from typing import Final

# gc.set_threshold's (generation 0 allocations, generation 1 and 2 collection counts);
# CPython's defaults are (700, 10, 10).
SERVER_THRESHOLDS: Final = (20_000, 50, 50)


def settle_heap(thresholds: tuple[int, int, int] = SERVER_THRESHOLDS) -> None:
    """Collect start-up's garbage, exempt the survivors from every later collection,
    and set the collection ``thresholds``."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
