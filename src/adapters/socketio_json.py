"""orjson behind the ``json`` interface python-socketio expects.

python-socketio calls ``dumps(obj, separators=...)`` and wants ``str`` back, so
``orjson`` cannot be passed as is. Setting it is process-wide (it is a class
attribute of the packet class), hence one module for everyone.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps(obj: Any, *args: Any, **kwargs: Any) -> str:
    """Compact JSON text; extra arguments (``separators``, ...) are ignored."""
    return orjson.dumps(obj).decode()


def loads(data: str | bytes, *args: Any, **kwargs: Any) -> Any:
    return orjson.loads(data)
