"""The README's shell examples marked for testing run as written, in a fresh HOME.

Convention: a fenced ```sh block directly preceded by the line ``<!-- test -->``
is run with ``bash -e`` in a temporary HOME, with this Python's bin directory
first on PATH (so ``syncagent`` is the one under test). ``pip install`` is not
run (the package is already installed): a line ``pip install ... && rest``
runs only ``rest``, and a line that is only ``pip install ...`` is skipped.
Write ``<!-- test: pip -->`` instead to run the block's pip commands too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^<!-- test(?P<pip>: pip)? -->\n```(?:sh|bash|console)\n(?P<body>.*?)^```", re.M | re.S)
PIP = re.compile(r"^\s*(python\s+-m\s+)?pip3?\s+install\b[^&;]*(?:&&\s*)?")


def blocks() -> list[tuple[int, str, bool]]:
    text = README.read_text(encoding="utf-8")
    return [(text[:m.start()].count("\n") + 1, m.group("body"), bool(m.group("pip"))) for m in BLOCK.finditer(text)]


def without_pip(body: str) -> str:
    """Drop `pip install ...` (and its `&&`) from each line; the package under test is installed already."""
    out = []
    for line in body.splitlines():
        stripped = PIP.sub("", line)
        if stripped.strip():
            out.append(stripped)
    return "\n".join(out) + "\n"


def test_readme_has_tested_blocks():
    """The demo command block at the top of the README is marked for testing."""
    found = blocks()
    assert any("syncagent demo" in body for _, body, _ in found)
    assert without_pip("pip install . && syncagent demo") == "syncagent demo\n"
    assert without_pip("pip install -e '.[test]'\nsyncagent --help") == "syncagent --help\n"


@pytest.mark.parametrize("line,body,pip", [pytest.param(*b, id=f"README line {b[0]}") for b in blocks()])
def test_readme_block_runs(line, body, pip, tmp_path):
    """Each marked block exits 0 in a fresh HOME, printing no traceback."""
    script = body if pip else without_pip(body)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCAGENT_")}
    env["HOME"] = str(tmp_path)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(["bash", "-e", "-c", script], cwd=README.parent, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f"README line {line}:\n{script}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
