"""The exception hierarchy. Each error's message is one sentence a user can act on."""


class SyncagentError(Exception):
    """A failure the user must act on; the CLI prints it and exits 1."""


class ConfigError(SyncagentError):
    """The configuration file is missing, malformed or has a wrong value."""


class AuthError(SyncagentError):
    """A login or OAuth token was refused."""


class SourceError(SyncagentError):
    """A mail source (server or local file) could not be read."""


class TransientSourceError(SourceError):
    """A network failure worth retrying: the next attempt may work."""


class CursorInvalid(SyncagentError):
    """A stored sync cursor (UIDVALIDITY, Gmail historyId) no longer holds."""


class StoreError(SyncagentError):
    """The database could not be opened or written."""


class LockedError(SyncagentError):
    """Another syncagent process holds the write lock."""


class InputError(SyncagentError):
    """A file given on the command line cannot be used."""
