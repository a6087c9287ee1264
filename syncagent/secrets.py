"""Passwords from a command, an environment variable, the system keyring or the config.

The password is returned to the caller and never logged or stored.
"""

from __future__ import annotations

import logging
import os
import subprocess

from syncagent.config import Secret
from syncagent.errors import ConfigError

log = logging.getLogger(__name__)
KEYRING_SERVICE = "syncagent"


def resolve(secret: Secret) -> str:
    if secret.password_command:
        return _from_command(secret)
    if secret.password_env:
        value = os.environ.get(secret.password_env)
        if not value:
            raise ConfigError(
                f"The environment variable {secret.password_env} named by `{secret.owner}.password_env` is not set; export it before starting syncagent."
            )
        return value
    if secret.keyring:
        return _from_keyring(secret)
    if secret.password:
        log.warning("%s: the password is written in the config file; prefer password_command, password_env or keyring = true", secret.owner)
        return secret.password
    raise ConfigError(f"`{secret.owner}` has no password source; set password_command, password_env or keyring = true.")


def _from_command(secret: Secret) -> str:
    command = secret.password_command or ""
    try:
        proc = subprocess.run(
            command, shell=True, capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        raise ConfigError(f"`{secret.owner}.password_command` did not finish within 60 s; check that it runs without asking for input.") from None
    if proc.returncode != 0:
        raise ConfigError(
            f"`{secret.owner}.password_command` failed with exit code {proc.returncode}; run it by hand to see why."
        )
    value = proc.stdout.splitlines()[0] if proc.stdout else ""
    if not value:
        raise ConfigError(f"`{secret.owner}.password_command` printed nothing; it must print the password on its first line.")
    return value


def _from_keyring(secret: Secret) -> str:
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a dependency
        raise ConfigError("The keyring package is not installed; install it or use password_command.") from None
    user = secret.keyring_user or secret.owner
    try:
        value = keyring.get_password(KEYRING_SERVICE, user)
    except KeyringError as exc:
        raise ConfigError(f"The system keyring could not be read for `{secret.owner}` ({exc}); use password_command or password_env instead.") from None
    if not value:
        raise ConfigError(
            f"The system keyring has no password for {user} (service {KEYRING_SERVICE!r}); store it with `keyring set {KEYRING_SERVICE} {user}`."
        )
    return value
