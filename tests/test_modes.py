"""Promise 5 under any umask: every directory syncagent creates is 0700 and every file 0600,
even when the user's umask is 000 (which would otherwise make them world-writable)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from faults_helpers import ME

ROOT = Path(__file__).resolve().parent.parent

# Run with umask 000: the library calls that write a Gmail token and an init config.
WRITERS = """
import os, sys
from pathlib import Path
os.umask(0)
from syncagent.setup import init
from syncagent.sources.gmail import auth

class Creds:
    def to_json(self):
        return '{"token": "t", "refresh_token": "r"}'

home = Path(sys.argv[1])
auth.save_credentials(home / "tokens" / "deep" / "work.token.json", Creds())
text = '[database]\\npath = "%s"\\n[[accounts]]\\nname = "m"\\nkind = "maildir"\\npath = "%s"\\n' % (
    home / "db" / "x.db", home / "Maildir")
init.write(home / "cfg" / "sub" / "config.toml", text)
init.write(home / "cfg" / "sub" / "config.toml", text, force=True)  # and the .bak it keeps
"""


def _umask_000() -> None:
    os.umask(0)


def _loose(root: Path) -> dict[str, str]:
    """Every path under ``root`` whose mode is not 0700 (directories) or 0600 (files)."""
    out = {}
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        want = 0o700 if path.is_dir() else 0o600
        if mode != want:
            out[str(path.relative_to(root.parent))] = oct(mode)
    return out


def test_everything_created_under_umask_000_is_private(tmp_path):
    """Under umask 000 the database (and WAL), lock, digests, demo, token and init config and their folders are 0700/0600."""
    inputs = tmp_path / "inputs"  # what the test writes itself, outside the checked tree
    maildir = inputs / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "cur" / "1700000000.M1P1.host:2,S").write_bytes(
        f"From: {ME}\r\nTo: ann@example.org\r\nSubject: Hi\r\nDate: Mon, 2 Nov 2026 09:00:00 -0500\r\n"
        "Message-ID: <a@me.test>\r\n\r\nbody\r\n".encode())
    made = tmp_path / "made"  # nothing under here exists before syncagent runs
    cfg = inputs / "config.toml"
    cfg.write_text(f'timezone = "America/New_York"\n[database]\npath = "{made / "data" / "nested" / "s.db"}"\n'
                   f'[digest]\noutput_dir = "{made / "out" / "digests"}"\n\n'
                   f'[[accounts]]\nname = "local"\nkind = "maildir"\npath = "{maildir}"\naddresses = ["{ME}"]\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(made / "home")}
    env.pop("SYNCAGENT_CONFIG", None)
    for args in (["--config", str(cfg), "contacts", "add", "Ann", "ann@example.org"],
                 ["--config", str(cfg), "sync"],
                 ["--config", str(cfg), "digest", "--now", "2026-11-20T12:00:00Z"],
                 ["demo"]):
        proc = subprocess.run([sys.executable, "-m", "syncagent", *args], capture_output=True, env=env,
                              preexec_fn=_umask_000, timeout=300, cwd=ROOT)
        assert proc.returncode == 0, (args, proc.stderr.decode())
    proc = subprocess.run([sys.executable, "-c", WRITERS, str(made / "lib")], capture_output=True, env=env,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr.decode()
    expected = ["data/nested/s.db", "data/nested/s.db.lock", "out/digests/2026-W47.md", "lib/tokens/deep/work.token.json",
                "lib/cfg/sub/config.toml", "lib/cfg/sub/config.toml.bak",
                "home/.local/share/syncagent/demo/demo.db", "home/.local/share/syncagent/demo/config.toml"]
    assert [p for p in expected if not (made / p).exists()] == []
    assert list((made / "home/.local/share/syncagent/demo/digests").glob("*.html"))
    assert _loose(made) == {}
