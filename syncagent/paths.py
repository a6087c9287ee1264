"""Where syncagent keeps its files by default (the same places config.py reads)."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> Path:
    """``~/.config/syncagent``: config.toml and Gmail token files."""
    return Path("~/.config/syncagent").expanduser()


def data_dir() -> Path:
    """``~/.local/share/syncagent``: the database and the digests."""
    return Path("~/.local/share/syncagent").expanduser()


def demo_dir() -> Path:
    """The demo's own config, database and digests: never the user's real ones."""
    return data_dir() / "demo"


def systemd_unit() -> Path:
    """Where the systemd user unit is installed."""
    return Path("~/.config/systemd/user/syncagent.service").expanduser()
