"""The documented examples run: the doctests of chatcore.testing and its factories,
and every ```python block of README.md (each on its own, in a fresh namespace, under
asyncio)."""

from __future__ import annotations

import ast
import asyncio
import doctest
import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import chatcore.testing
from chatcore.testing import factories

README = Path(__file__).resolve().parents[2] / "README.md"

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(markdown: str) -> list[str]:
    """The bodies of the ```python fenced blocks (not ```py, ```pycon, ```bash, ...)."""
    return [match.group(1) for match in _FENCE.finditer(markdown)]


def run_block(source: str, name: str = "README.md") -> dict[str, Any]:
    """Run a block as a script; top-level ``await`` is allowed and runs with asyncio."""
    code = compile(source, name, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    if code.co_flags & inspect.CO_COROUTINE:
        asyncio.run(eval(code, namespace))
    else:
        exec(code, namespace)
    return namespace


@pytest.mark.parametrize("module", [chatcore.testing, factories], ids=lambda m: m.__name__)
def test_the_testing_kit_doctests_run_and_pass(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)

    assert result.attempted > 0, f"the example in {module.__name__}'s docstring did not run"
    assert result.failed == 0


BLOCKS = python_blocks(README.read_text(encoding="utf-8")) if README.exists() else []

if BLOCKS:

    @pytest.mark.parametrize("source", BLOCKS, ids=[f"block-{i + 1}" for i in range(len(BLOCKS))])
    def test_readme_python_block_runs(source: str) -> None:
        run_block(source)


# The two helpers above are what the README check relies on, so they are tested
# here even while the README has no example yet.

SAMPLE = """\
Intro.

```python
x = 1 + 1
```

```bash
echo not python
```

```pycon
>>> not_run()
```

```python
import asyncio

async def twice(n):
    await asyncio.sleep(0)
    return 2 * n

y = await twice(21)
```
"""


def test_only_python_fences_are_extracted() -> None:
    blocks = python_blocks(SAMPLE)

    assert blocks[0] == "x = 1 + 1\n"
    assert len(blocks) == 2
    assert blocks[1].startswith("import asyncio\n")


def test_blocks_run_plain_or_with_top_level_await() -> None:
    plain, awaiting = python_blocks(SAMPLE)

    assert run_block(plain)["x"] == 2
    assert run_block(awaiting)["y"] == 42


def test_a_failing_block_fails_the_test() -> None:
    with pytest.raises(AssertionError):
        run_block("assert 1 == 2\n")
    with pytest.raises(ZeroDivisionError):
        run_block("import asyncio\nawait asyncio.sleep(0)\n1 / 0\n")
