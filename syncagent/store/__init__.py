"""The database side: every read and write of syncagent's tables."""

from __future__ import annotations

import sys

# sqlite-utils imports numpy and pandas, when they are installed, only to map their number
# types to column types; syncagent never hands it either, and importing them is most of a
# read command's start-up (a quarter of a second). Hidden while sqlite-utils loads, they stay
# importable for anything that wants them afterwards.
if "sqlite_utils" not in sys.modules:
    _hidden = [name for name in ("numpy", "pandas") if name not in sys.modules]
    for _name in _hidden:
        sys.modules[_name] = None  # type: ignore[assignment]  # makes `import` raise ImportError
    try:
        import sqlite_utils.db  # noqa: F401
    finally:
        for _name in _hidden:
            if sys.modules.get(_name, 0) is None:
                del sys.modules[_name]
