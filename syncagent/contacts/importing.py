"""Read contacts from a file (CSV, LinkedIn Connections.csv, vCard) and import them.

Readers turn a file into ``Record``s (a place such as "row 5" plus a
``ContactInput``); ``import_file`` writes them all in one transaction through
``contacts.upsert``. A bad row is reported with its reason and never stops the
import; only a file that cannot be used at all raises ``InputError``.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from syncagent.contacts import book as contacts
from syncagent.contacts.book import BadInput, Conflict, ContactInput
from syncagent.errors import InputError
from syncagent.store.db import transaction
from syncagent.timeutil import iso, utcnow

log = logging.getLogger(__name__)

# Header aliases (compared lower-cased with spaces, '_' and '-' removed).
_COLUMNS = {
    "name": ("name", "fullname", "displayname", "fn"),
    "first_name": ("firstname", "givenname"),
    "last_name": ("lastname", "familyname", "surname"),
    "email": ("email", "emails", "emailaddress", "emailaddresses", "mail"),
    "company": ("company", "organization", "organisation", "org", "organizationname", "organization1name"),
    "title": ("title", "position", "jobtitle", "organizationtitle", "organization1title"),
    "segment": ("segment",),
    "tags": ("tags", "tag", "categories", "labels"),
    "notes": ("notes", "note"),
    "url": ("url", "linkedin", "profileurl"),
    "cadence_days": ("cadencedays", "cadence"),
}
_ALIASES = {alias: key for key, aliases in _COLUMNS.items() for alias in aliases}
# Google Contacts ("E-mail 1 - Value") and Outlook ("E-mail 2 Address") CSVs spread addresses over columns.
_MORE_EMAIL = re.compile(r"^e?mail\d+(?:value|address)$")
EXPECTED = "name and email (or emails), optionally company, title, segment, tags, notes and cadence_days"


@dataclass
class Record:
    where: str  # "row 5" or "card 3": what the user looks for in the file
    item: ContactInput | None = None
    problem: str | None = None  # set when the reader already knows the record is unusable


@dataclass
class Skipped:
    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass
class ImportReport:
    path: str
    format: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    contact_ids: list[int] = field(default_factory=list)
    note: str | None = None  # how the file was decoded, when it was not plain UTF-8

    def summary(self) -> str:
        return (
            f"Imported {Path(self.path).name}: {self.added} added, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.skipped)} skipped"
        )


# --- reading -----------------------------------------------------------------

# Single-byte code pages a spreadsheet or an address book writes when it does not write UTF-8;
# the guess for lines that are not UTF-8 is made among these only, since a few short lines
# are too little for a detector to tell Windows-1252 from, say, Big5.
_LEGACY = ("cp1252", "cp1250", "cp1251", "cp1253", "cp1254", "cp1257", "iso8859_15", "mac_roman")
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),  # Excel's "Unicode Text", Outlook's exports
    (b"\xfe\xff", "utf-16"),
)


@dataclass
class Decoded:
    text: str
    encoding: str
    note: str | None = None  # a warning for the user when part or all of the file was not UTF-8


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"There is no file {path}; check the path and try again.") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder; give the contacts file inside it.") from None
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}; check its permissions.") from None


def decode(raw: bytes, unit: str = "rows") -> Decoded:
    """The file's text, whatever program wrote it.

    A byte-order mark decides (UTF-8, UTF-16 LE/BE, UTF-32). Without one, valid
    UTF-8 is UTF-8; UTF-16 without a mark and whole files in another encoding
    are recognised by charset-normalizer. A file that mixes UTF-8 lines with
    lines in a legacy code page (a vCard pieced together from two exports) is
    decoded line by line, and the note names the lines that were not UTF-8 so
    the user can check them; ``unit`` is what those lines are called ("rows").
    """
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            return Decoded(raw.decode(encoding, errors="replace"), encoding)
    if b"\x00" in raw[:4096]:
        # UTF-16 without a mark: ASCII text has a NUL in every other byte, which is valid UTF-8.
        head = raw[:4096]
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if max(even, odd) > len(head) // 4:
            encoding = "utf-16-le" if odd > even else "utf-16-be"
            return Decoded(raw.decode(encoding, errors="replace"), encoding)
    try:
        return Decoded(raw.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    lines = raw.split(b"\n")
    bad: list[int] = []
    good_non_ascii = False
    for number, line in enumerate(lines, start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            good_non_ascii = True
        except UnicodeDecodeError:
            bad.append(number)
    if not good_non_ascii:
        encoding = _whole_file_encoding(raw)
        text = raw.decode(encoding, errors="replace")
        if encoding.replace("_", "-").lower().startswith("utf-16") or encoding.lower().startswith("utf_32"):
            return Decoded(text, encoding)
        return Decoded(text, encoding, f"the file is not UTF-8; read as {encoding}")
    legacy = _legacy_encoding(b"\n".join(lines[n - 1] for n in bad))
    out = []
    for line in lines:
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(line.decode(legacy, errors="replace"))
    shown = ", ".join(str(n) for n in bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
    verb = "was" if len(bad) == 1 else "were"
    noun = unit[:-1] if len(bad) == 1 else unit
    return Decoded("\n".join(out), "utf-8", f"{noun} {shown} {verb} not UTF-8; read as {legacy}")


def _whole_file_encoding(raw: bytes) -> str:
    from charset_normalizer import from_bytes

    return _prefer_cp1252(from_bytes(raw))


def _legacy_encoding(sample: bytes) -> str:
    from charset_normalizer import from_bytes

    return _prefer_cp1252(from_bytes(sample, cp_isolation=list(_LEGACY)))


def _prefer_cp1252(matches) -> str:
    """The detector's best guess, except that Windows-1252 wins a tie.

    Accented Latin text reads the same in several code pages (cp1250 and cp1252 agree
    on "é" and "ü" but not on "ß" or "È"), and the detector ranks the tied ones
    arbitrarily; Windows-1252 is what Excel and Outlook write in Western locales.
    """
    best = matches.best()
    if best is None:
        return "cp1252"
    for match in matches:
        # could_be_from_charset: the code pages that give this very text (the detector keeps one of them)
        if ("cp1252" in match.could_be_from_charset and match.chaos <= best.chaos + 0.01
                and match.coherence >= best.coherence - 0.01):
            return "cp1252"
    return best.encoding


def read_text(path: Path) -> str:
    """The file as text (see ``decode``)."""
    return decode(read_bytes(path)).text


def detect_format(path: Path, text: str) -> str:
    """``"vcard"`` or ``"csv"``: the content decides when it clearly is a vCard, else the extension."""
    if text.lstrip("\ufeff \t\r\n").upper().startswith("BEGIN:VCARD"):
        return "vcard"
    if path.suffix.lower() in (".vcf", ".vcard"):
        return "vcard"
    return "csv"


def read_records(path: Path) -> tuple[str, list[Record]]:
    """(format label, records) for a contacts file of any supported kind."""
    label, records, _ = read_file(path)
    return label, records


def read_file(path: Path) -> tuple[str, list[Record], str | None]:
    """(format label, records, a note about the encoding or None)."""
    raw = read_bytes(path)
    decoded = decode(raw)
    if detect_format(path, decoded.text) == "vcard":
        if decoded.note and decoded.encoding == "utf-8":
            decoded = decode(raw, unit="lines")
        records = read_vcards(decoded.text)
        if not records:
            raise InputError(f"{path} holds no vCard (BEGIN:VCARD ... END:VCARD); export the contacts again as vCard, or give a CSV.")
        return "vCard", records, decoded.note
    label, records = read_csv(path, decoded.text)
    return label, records, decoded.note


def _key(cell: str) -> str:
    return re.sub(r"[\s_\-]+", "", cell.strip().lstrip("\ufeff").lower())


def _find_header(lines: list[str]) -> tuple[int, str, dict[str, list[int]]] | None:
    """(line index, delimiter, column map) of the first line that names an email column.

    LinkedIn exports start with a few lines of notes before the real header,
    so the header is searched for rather than assumed on line 1.
    """
    for index, line in enumerate(lines[:50]):
        best = None
        for delimiter in (",", ";", "\t"):
            cells = next(csv.reader([line], delimiter=delimiter), [])
            columns: dict[str, list[int]] = {}
            for pos, cell in enumerate(cells):
                key = _ALIASES.get(_key(cell)) or ("email" if _MORE_EMAIL.match(_key(cell)) else None)
                if key == "email" or (key and key not in columns):
                    columns.setdefault(key, []).append(pos)
            if "email" in columns and (best is None or len(columns) > len(best[2])):
                best = (index, delimiter, columns)
        if best:
            return best
    return None


def read_csv(path: Path, text: str) -> tuple[str, list[Record]]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    found = _find_header(lines)
    if found is None:
        raise InputError(
            f"{path} has no header row syncagent can use; it expected the columns {EXPECTED} "
            "(or a LinkedIn Connections.csv export, or a .vcf vCard file)."
        )
    header_index, delimiter, columns = found
    label = "LinkedIn connections" if {"first_name", "last_name", "url"} <= set(columns) else "CSV"
    reader = csv.reader(io.StringIO("\n".join(lines[header_index + 1:])), delimiter=delimiter)
    records: list[Record] = []
    start = reader.line_num
    for cells in reader:
        # Row numbers are file line numbers, as a spreadsheet or an editor shows them.
        where = f"row {header_index + 2 + start}"
        start = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        records.append(_csv_record(where, cells, columns))
    return label, records


def _csv_record(where: str, cells: list[str], columns: dict[str, list[int]]) -> Record:
    def cell(key: str) -> str | None:
        values = [cells[p].strip() for p in columns.get(key, []) if p < len(cells) and cells[p].strip()]
        return ";".join(values) or None

    name = cell("name") or " ".join(p for p in (cell("first_name"), cell("last_name")) if p) or None
    try:
        cadence = contacts.parse_cadence(cell("cadence_days"))
    except ValueError:
        return Record(where, problem=f"bad cadence_days {cell('cadence_days')!r} (a number of days)")
    item = ContactInput(
        name=name,
        # Google writes several addresses in one cell as "a ::: b".
        addresses=contacts.split_addresses((cell("email") or "").replace(":::", ";")),
        company=cell("company"),
        title=cell("title"),
        segment=cell("segment"),
        tags=cell("tags"),
        notes=cell("notes"),
        url=cell("url"),
        cadence_days=cadence,
    )
    return Record(where, item)


# --- vCard -------------------------------------------------------------------

_CARD_RE = re.compile(r"^BEGIN:VCARD\s*$.*?^END:VCARD\s*$", re.IGNORECASE | re.MULTILINE | re.DOTALL)


def read_vcards(text: str) -> list[Record]:
    """One record per vCard; each card is parsed alone so one broken card cannot stop the rest."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    records = []
    for number, match in enumerate(_CARD_RE.finditer(text), start=1):
        card = match.group(0)
        try:
            item = _vobject_card(card)
        except Exception as exc:  # vobject raises many kinds on bad input; the fallback reads what it can
            log.warning("vCard %d did not parse (%s); reading it line by line", number, exc)
            item = _fallback_card(card)
        where = f"card {number}" + (f" ({item.name})" if item.name else "")
        records.append(Record(where, item))
    return records


def _vobject_card(card: str) -> ContactInput:
    import vobject

    vcard = vobject.readOne(card)
    found = vcard.contents

    def first(key: str):
        items = found.get(key)
        return items[0].value if items else None

    name = first("fn")
    if not name and found.get("n"):
        n = found["n"][0].value
        name = " ".join(p for p in (getattr(n, "given", ""), getattr(n, "family", "")) if p) if not isinstance(n, str) else n
    org = first("org")
    if isinstance(org, (list, tuple)):
        org = " ".join(p for p in org if p) or None
    categories = [c for item in found.get("categories", []) for c in (item.value if isinstance(item.value, list) else [item.value])]
    return ContactInput(
        name=_text(name),
        addresses=[t for e in found.get("email", []) if (t := _text(e.value))],
        company=_text(org),
        title=_text(first("title")),
        tags=contacts.normalize_tags(categories) if categories else None,
        notes=_text(first("note")),
        url=_text(first("url")),
    )


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value if v)
    value = str(value).strip()
    return value or None


def _fallback_card(card: str) -> ContactInput:
    """A minimal reader for cards vobject rejects: unfold lines and take the properties we use."""
    unfolded = re.sub(r"\n[ \t]", "", card)
    props: dict[str, list[str]] = {}
    for line in unfolded.split("\n"):
        head, sep, value = line.partition(":")
        if not sep:
            continue
        prop = head.split(";")[0].split(".")[-1].upper()  # "item1.EMAIL;TYPE=x" -> EMAIL
        value = value.replace("\\n", "\n").replace("\\,", ",").replace("\\;", ";").strip()
        props.setdefault(prop, []).append(value)

    def first(key: str) -> str | None:
        values = props.get(key)
        return (values[0] or None) if values else None

    name = first("FN")
    structured = first("N")
    if not name and structured:
        family, _, rest = structured.partition(";")
        name = " ".join(p for p in (rest.split(";")[0], family) if p) or None
    return ContactInput(
        name=name,
        addresses=[v for v in props.get("EMAIL", []) if v],
        company=(first("ORG") or "").replace(";", " ").strip() or None,
        title=first("TITLE"),
        tags=contacts.normalize_tags(",".join(props.get("CATEGORIES", []))) if props.get("CATEGORIES") else None,
        notes=first("NOTE"),
        url=first("URL"),
    )


# --- importing ---------------------------------------------------------------

PROGRESS_EVERY = 500  # records between progress calls: often enough to move a bar, rare enough to cost nothing


def import_file(db, path: str | Path, progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Import every usable record of ``path`` in ONE transaction and report what happened to each.

    ``progress(done, total)`` is called every PROGRESS_EVERY records and at the end.
    """
    path = Path(path).expanduser()
    label, records, note = read_file(path)
    report = ImportReport(str(path), label, note=note)
    if note:
        log.info("%s: %s", path.name, note)
    now = iso(utcnow())
    with transaction(db, "import") as conn:
        seen: set[int] = set()
        for done, record in enumerate(records):
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, len(records))
            if record.problem:
                report.skipped.append(Skipped(record.where, record.problem))
                continue
            assert record.item is not None  # a record without a problem always carries its contact
            try:
                outcome, contact_id = contacts.upsert(conn, record.item, now)
            except (BadInput, Conflict) as exc:
                report.skipped.append(Skipped(record.where, str(exc)))
                continue
            setattr(report, outcome, getattr(report, outcome) + 1)
            if contact_id not in seen:
                seen.add(contact_id)
                report.contact_ids.append(contact_id)
        if progress is not None:
            progress(len(records), len(records))
    log.debug("%s", report.summary())
    return report
