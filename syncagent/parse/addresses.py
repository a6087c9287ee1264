"""The one rule for what an email address is and how it is written in the store.

Every address the project compares goes through ``normalize_address``: those
read from mail headers, calendar invitations, contacts added or imported, and
the account's own ``addresses`` in the config. The same text must give the
same key everywhere, or a contact would silently stop matching their mail.

The rules, each chosen so that two spellings of one mailbox meet:

- A display-name form (``Jane Doe <jane@example.com>``, ``"Doe, Jane" <...>``,
  ``jane@example.com (Jane)``), angle brackets and a ``mailto:`` prefix give
  the bare address; surrounding whitespace is ignored.
- The whole address is lower-cased. Local parts are case-sensitive on paper,
  but no provider in use treats them so and people type them any way.
- A trailing dot on the domain (the DNS root, ``example.com.``) is dropped.
- Internationalised domains are kept in Unicode, NFC: ``xn--bcher-kva.de``
  (the ASCII form some mailers send) and ``Bücher.de`` both give ``bücher.de``.
- Single-label domains (``bob@localhost``, an intranet host) are addresses:
  local and internal mail uses them, and refusing them would drop real senders.
- Refused (None): no ``@`` or more than one, an empty local part or domain
  label (``a@b..c``, ``a@.b``), whitespace or any of ``<>()[],;:"\\`` left in the
  address (quoted local parts and domain literals, too rare to be worth the
  ambiguity), or more than 320 characters.
"""

from __future__ import annotations

import re
import unicodedata

MAX_LENGTH = 320
_BAD = re.compile(r'[\s<>()\[\],;:"\\@]')
# Only these need the display-name parser; a bare address skips it (headers are hot).
_NEEDS_PARSE = re.compile(r'[<>()"]')
_MAILTO_IN_ANGLE = re.compile(r"<\s*mailto:", re.IGNORECASE)


def normalize_address(text: str | None) -> str | None:
    """``" Jane <Jane@Example.COM.>"`` -> ``"jane@example.com"``; None when it is not an address."""
    if not text:
        return None
    addr = text.strip()
    if _NEEDS_PARSE.search(addr):
        addr = _MAILTO_IN_ANGLE.sub("<", addr)
        addr = _strip_mailto(addr.strip("<>").strip()) if addr.startswith("<") and addr.endswith(">") else addr
        if _NEEDS_PARSE.search(addr):
            from email.utils import parseaddr  # rare; email.utils was a quarter of loading the config

            addr = parseaddr(addr)[1]
    addr = _strip_mailto(addr.strip())
    local, at, domain = addr.rpartition("@")
    if not at or not local or _BAD.search(local):
        return None
    host = _domain(domain)
    if host is None:
        return None
    addr = f"{local.lower()}@{host}"
    if not addr.isascii():
        addr = unicodedata.normalize("NFC", addr)
    return addr if len(addr) <= MAX_LENGTH else None


def _strip_mailto(addr: str) -> str:
    return addr[7:] if addr[:7].lower() == "mailto:" else addr


def _domain(domain: str) -> str | None:
    if domain.endswith("."):
        domain = domain[:-1]
    labels = domain.lower().split(".")
    out = []
    for label in labels:
        if not label or _BAD.search(label):
            return None
        if label.startswith("xn--"):
            try:
                label = label.encode("ascii").decode("idna").lower()
            except UnicodeError:
                pass  # not valid punycode: keep the label as written
        out.append(label)
    return ".".join(out)
