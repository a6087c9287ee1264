"""Every source reads the same text out of the same message: the first plain part, else the first HTML part."""

from __future__ import annotations

import base64
from email.message import EmailMessage, Message

from syncagent.parse.bodytext import first_text
from syncagent.sources.gmail.source import first_text as gmail_first_text


def gmail_payload(part: Message) -> dict:
    """The message as Gmail's API gives it in format=full: a tree of parts, bodies in URL-safe base64."""
    out: dict = {"mimeType": part.get_content_type(), "filename": part.get_filename() or "",
                 "headers": [{"name": k, "value": str(v)} for k, v in part.items()], "body": {}}
    if part.is_multipart():
        out["parts"] = [gmail_payload(p) for p in part.get_payload()]
    else:
        raw = part.get_payload(decode=True) or b""
        out["body"] = {"data": base64.urlsafe_b64encode(raw).decode().rstrip("="), "size": len(raw)}
    return out


def both(message: Message, limit: int = 4096) -> tuple[str | None, str | None]:
    return first_text(message, limit), gmail_first_text(gmail_payload(message), limit)


def test_plain_wins_over_an_earlier_html_part_in_every_source():
    """A message whose HTML alternative comes first is still read as its plain text, by IMAP/local and Gmail alike."""
    msg = EmailMessage()
    msg.set_content("<p>Hello <b>there</b></p>", subtype="html")
    msg.add_alternative("Hello there, plainly.", subtype="plain")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="cv.pdf")
    assert both(msg) == ("Hello there, plainly.\n", "Hello there, plainly.\n")


def test_html_alone_is_read_as_text_and_an_attached_text_file_is_not_the_body():
    """With only HTML inline, its text is read (tags gone, entities decoded); an attached .txt never stands in."""
    msg = EmailMessage()
    msg.set_content("<div>Back on 3 March</div><p>Caf&eacute; later</p>", subtype="html")
    msg.add_attachment("not the body", filename="notes.txt")
    local, gmail = both(msg)
    assert local == gmail
    assert "Back on 3 March" in local and "Café later" in local and "<" not in local and "not the body" not in local


def test_the_part_is_cut_to_the_limit_and_decoded_by_its_charset():
    """The text is read only up to the limit, in the part's own charset, the same way in every source."""
    msg = EmailMessage()
    msg.set_content("Grüße aus Köln " * 10, charset="iso-8859-1", cte="quoted-printable")
    local, gmail = both(msg, limit=15)
    assert local == gmail == "Grüße aus Köln "
