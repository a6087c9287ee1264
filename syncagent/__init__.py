"""syncagent: a networking ledger kept from your mailbox."""

__version__ = "0.1.0"
