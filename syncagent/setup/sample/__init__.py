"""The bundled sample mailbox used by `syncagent demo` (see generate.py)."""
