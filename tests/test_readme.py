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


COMMAND = re.compile(r"^\s*(?:[A-Z_]+=\S+\s+)?(syncagent\b.*?)\s*(?:#.*)?$")
FENCE = re.compile(r"^```(?:sh|bash|console)\n(?P<body>.*?)^```", re.M | re.S)


def readme_commands() -> list[str]:
    """Every `syncagent ...` line of every shell block in the README (comments dropped)."""
    text = README.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        for line in m.group("body").splitlines():
            line = line.split("&&")[-1]
            found = COMMAND.match(line)
            if found:
                out.append(found.group(1))
    return out


def test_every_readme_command_is_a_valid_invocation():
    """Each `syncagent` command the README shows parses: the command, subcommand and options exist."""
    import shlex
    import warnings

    import click

    from syncagent.cli import cli

    def remaining(ctx):
        with warnings.catch_warnings():  # click 8.2 deprecates protected_args; 9.0 folds it into args
            warnings.simplefilter("ignore", DeprecationWarning)
            return [*ctx.protected_args, *ctx.args]

    commands = readme_commands()
    assert len(commands) > 20
    for text in commands:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        cut = next((i for i, w in enumerate(words) if w and set(w) <= set("|&;<>")), len(words))
        args = words[1:cut]  # the command itself, without a pipe or redirection after it
        ctx = cli.make_context("syncagent", list(args), resilient_parsing=False)
        command, ctx_args = cli, remaining(ctx)
        while isinstance(command, click.Group) and ctx_args:
            name, *rest = ctx_args
            sub = command.get_command(ctx, name)
            assert sub is not None, f"README: unknown command in {text!r}"
            ctx = sub.make_context(name, list(rest), parent=ctx, resilient_parsing=False)
            command, ctx_args = sub, remaining(ctx)
