"""Strangers' text made safe where it is shown (DESIGN promise 6).

Names, subjects, snippets, folder names and server replies come from anyone
who can send mail. The database and JSON keep them exact; every surface that
*shows* them passes them through one of these functions at the last moment:

- ``for_terminal(text)``  a terminal, a log line, a plain-text mail or notification title
- ``for_markdown(text)``  inline text inside Markdown (the digest's .md, which is also plain text)
- ``for_markup(text)``    HTML, XML and Pango markup (the HTML digest, notify-send bodies)
- ``for_json(value)``     JSON for stdout: exact values, nothing a terminal would obey
- ``shorten(text, n)``    cap a stranger's text at n characters

Nothing is deleted: a control character becomes its visible picture (ESC is
shown as ``␛``, NUL as ``␀``, DEL as ``␡``), a C1 control or a bidirectional
override/isolate/mark becomes ``⟨U+202E⟩``, so the reader sees that something
odd was there instead of having their terminal, window title, clipboard or
reading order changed. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape as _html_escape

__all__ = ["for_json", "for_markdown", "for_markup", "for_terminal", "shorten", "visible"]

# Bidirectional embeddings/overrides (U+202A-202E), isolates (U+2066-2069) and the
# implicit marks (U+200E/F, U+061C): they reorder what follows them, so "evil.com" + U+202E + "moc.knab"
# can pass for another sender or push the rest of a table row around.
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Line and paragraph separators end a line in some terminals and renderers.
_SEPARATORS = "\u2028\u2029"
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f" + _BIDI + _SEPARATORS + "\ud800-\udfff\ufffe\uffff]"
)
_UNSAFE_KEEP_LINES = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f" + _BIDI + _SEPARATORS + "\ud800-\udfff\ufffe\uffff]"
)


def _picture(match: re.Match) -> str:
    ch = match.group()
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control pictures": ␀ ... ␛ ... ␟
    if code == 0x7F:
        return "\u2421"  # ␡
    if 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
        return "\ufffd"  # a lone surrogate (undecodable byte) cannot even be printed
    return f"⟨U+{code:04X}⟩"  # mathematical angle brackets: no Markdown or HTML meaning


def visible(text: object, *, multiline: bool = False) -> str:
    """Every control, bidi and separator character replaced by a visible stand-in.

    With ``multiline`` a newline and a tab stay what they are (for whole
    messages made of several lines); otherwise they are shown too, so one
    stranger's field stays on one line.
    """
    if text is None:
        return ""
    text = str(text)
    pattern = _UNSAFE_KEEP_LINES if multiline else _UNSAFE
    return pattern.sub(_picture, text)


def for_terminal(text: object, *, multiline: bool = False) -> str:
    """Text that can be printed to a terminal (or a log, or a plain-text mail) without being obeyed.

    No escape sequence (CSI, OSC title/clipboard writes, DCS), BEL, backspace,
    carriage return, 8-bit C1 control or bidi override survives; see ``visible``.
    """
    return visible(text, multiline=multiline)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MD_TAG = re.compile(r"<(?=[A-Za-z/!?])")  # only a '<' that could open an HTML tag or autolink
_MD_ENTITY = re.compile(r"&(?=#?[A-Za-z0-9]+;)")  # only an '&' that a renderer would decode


def for_markdown(text: object) -> str:
    """Inline Markdown that renders as exactly the text given, and reads as plain text too.

    Escapes as little as possible (the Markdown is also the plain-text part of
    the mailed digest): emphasis, code, links, table pipes, strikethrough, HTML
    tags and character references (``&#x202E;`` would otherwise come back).
    """
    out = visible(text)
    out = _MD_SPECIAL.sub(r"\\\1", out)
    out = _MD_TAG.sub(r"\\<", out)
    return _MD_ENTITY.sub(r"\\&", out)


def for_markup(text: object, *, multiline: bool = False, quote: bool = True) -> str:
    """Text for HTML, XML or Pango markup (notify-send bodies): visible controls, then &, <, > and quotes escaped.

    The result is also valid XML 1.0 character data (no C0 control, no lone
    surrogate). ``quote=False`` leaves quotes alone, for element text only
    (never an attribute value), where a plain-text reader would see ``&#x27;``.
    """
    return _html_escape(visible(text, multiline=multiline), quote=quote)


_JSON_UNSAFE = re.compile("[\x7f-\x9f" + _BIDI + _SEPARATORS + "\ud800-\udfff\ufffe\uffff]")


def for_json(value: object, *, indent: int | None = 2) -> str:
    """JSON with the exact values, safe to print: what a terminal would obey is written as a \\u escape.

    ``json.dumps`` already escapes C0 controls; DEL, C1 controls, bidi and
    separator characters and lone surrogates are escaped here too, which
    changes no value (they can only occur inside JSON strings).
    """
    import json

    if indent is None:
        text = json.dumps(value, ensure_ascii=False)
    else:
        try:
            text = _indented(value, 0, " " * indent, {})
        except _Unusual:
            text = json.dumps(value, indent=indent, ensure_ascii=False)
    if text.isascii():  # every character escaped here is beyond ASCII; checking is nearly free
        return text
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class _Unusual(Exception):
    """A value the fast indenting path leaves to ``json.dumps`` (a dict key that is not a string)."""


def _indented(value: object, depth: int, step: str, encoders: dict) -> str:
    """What ``json.dumps(value, indent=len(step), ensure_ascii=False)`` writes, byte for byte, at C speed.

    With an indent ``json.dumps`` falls back to its pure-Python encoder: printing a
    few thousand reminders took most of a second. A container holding no other
    container is written by the C encoder with the separators its depth needs
    (no JSON string holds a raw newline, so the brackets can be re-spaced around
    its output); only containers of containers are walked here.
    """
    children: Iterable[object]
    if isinstance(value, dict):
        children = value.values()
        opening, closing = "{", "}"
    elif isinstance(value, (list, tuple)):
        children = value
        opening, closing = "[", "]"
    else:
        return _encoder(encoders, depth, step)(value)
    if not value:
        return opening + closing
    inner = step * (depth + 1)
    if not any(isinstance(child, (dict, list, tuple)) for child in children):
        flat = _encoder(encoders, depth, step)(value)
        return f"{opening}\n{inner}{flat[1:-1]}\n{step * depth}{closing}"
    if opening == "[":
        parts = [_indented(child, depth + 1, step, encoders) for child in children]
    else:
        from json.encoder import encode_basestring

        parts = []
        for key, child in value.items():  # type: ignore[union-attr]
            if not isinstance(key, str):
                raise _Unusual
            parts.append(f"{encode_basestring(key)}: {_indented(child, depth + 1, step, encoders)}")
    return f"{opening}\n{inner}" + f",\n{inner}".join(parts) + f"\n{step * depth}{closing}"


def _encoder(encoders: dict, depth: int, step: str):
    """The C encoder writing one container's items on lines of their own at ``depth``."""
    found = encoders.get(depth)
    if found is None:
        import json

        found = encoders[depth] = json.JSONEncoder(
            ensure_ascii=False, separators=(",\n" + step * (depth + 1), ": ")).encode
    return found


def shorten(text: object, limit: int) -> str:
    """At most ``limit`` characters, the cut marked with an ellipsis; apply before escaping."""
    text = "" if text is None else str(text)
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"
