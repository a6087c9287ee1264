"""Contact files as programs export them: UTF-16, Windows-1252, mixed encodings, big files, and -q."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest
from click.testing import CliRunner

from syncagent.cli import cli
from syncagent.contacts import book as contacts
from syncagent.contacts.importing import import_file
from syncagent.store.db import open_db

PEOPLE = [("Jürgen Weiß", "juergen@bergwerk.test", "Bergwerk"), ("Renée Fontaine", "renee@lumiere.test", "Lumière"),
          ("José Álvarez", "jose@meridian.test", "Meridian Ñ")]


@pytest.fixture
def db(tmp_path):
    return open_db(tmp_path / "syncagent.db")


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\npath = "{tmp_path / "cli.db"}"\n')
    return path


def names(db) -> list[tuple]:
    return [(c["name"], c["email"], c["company"]) for c in contacts.list_contacts(db)]


def csv_text(delimiter=",") -> str:
    rows = [delimiter.join(("name", "email", "company"))] + [delimiter.join(p) for p in PEOPLE]
    return "\r\n".join(rows) + "\r\n"


@pytest.mark.parametrize("encoding, bom", [
    ("utf-16-le", b"\xff\xfe"),  # Excel's "Unicode Text" (tab-separated)
    ("utf-16-be", b"\xfe\xff"),
    ("utf-16-le", b""),          # no byte-order mark at all
    ("utf-8", b"\xef\xbb\xbf"),
])
def test_utf16_and_bom_csv_files_import(db, tmp_path, encoding, bom):
    """A CSV in UTF-16 (LE or BE, with or without a BOM) imports with every accent intact."""
    path = tmp_path / "export.txt"
    path.write_bytes(bom + csv_text("\t").encode(encoding))
    report = import_file(db, path)
    assert (report.added, report.note) == (3, None)
    assert names(db) == PEOPLE


def test_utf16_vcard_imports(db, tmp_path):
    """An Outlook-style vCard file in UTF-16 with a BOM is read as vCards, not refused."""
    cards = "".join(f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:{n}\r\nEMAIL:{e}\r\nORG:{c}\r\nEND:VCARD\r\n" for n, e, c in PEOPLE)
    path = tmp_path / "contacts.vcf"
    path.write_bytes(b"\xff\xfe" + cards.encode("utf-16-le"))
    assert import_file(db, path).added == 3
    assert names(db) == PEOPLE


def test_windows_1252_file_is_read_as_such_and_said(db, tmp_path):
    """A whole file in Windows-1252 (ß, é, Ñ) is decoded as cp1252, and the report says so."""
    path = tmp_path / "contacts.csv"
    path.write_bytes(csv_text().encode("cp1252"))
    report = import_file(db, path)
    assert report.note == "the file is not UTF-8; read as cp1252"
    assert names(db) == PEOPLE


def test_vcard_mixing_utf8_and_latin1_lines_is_decoded_per_line_and_named(config_file, tmp_path):
    """UTF-8 cards keep their accents when another card is Latin-1; the warning names the lines read otherwise."""
    utf8 = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Zoë Dubois\r\nEMAIL:zoe@nord.test\r\nORG:Atelier Nord\r\nEND:VCARD\r\n"
    latin = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Björn Lindqvist\r\nEMAIL:bjorn@fjord.test\r\nORG:Fjörd AB\r\nEND:VCARD\r\n"
    more = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jürgen Weiß\r\nEMAIL:juergen@bergwerk.test\r\nEND:VCARD\r\n"
    path = tmp_path / "merged.vcf"
    path.write_bytes(utf8.encode() + latin.encode("latin-1") + more.encode())
    result = CliRunner().invoke(cli, ["--config", str(config_file), "contacts", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stderr == "Warning: lines 9, 11 were not UTF-8; read as cp1252; check those contacts' names.\n"
    listed = json.loads(CliRunner().invoke(cli, ["--config", str(config_file), "contacts", "list", "--json"]).stdout)
    assert [(c["name"], c["company"]) for c in listed] == [
        ("Zoë Dubois", "Atelier Nord"), ("Björn Lindqvist", "Fjörd AB"), ("Jürgen Weiß", None)]


def test_big_import_shows_a_progress_bar_only_on_a_terminal(config_file, tmp_path):
    """3,000 contacts draw a progress bar on a terminal's stderr; piped, stderr stays empty."""
    path = tmp_path / "big.csv"
    path.write_text("name,email\n" + "".join(f"Person {i},p{i}@big.test\n" for i in range(3000)))
    args = [sys.executable, "-m", "syncagent", "--config", str(config_file), "contacts", "import", str(path)]
    piped = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert (piped.returncode, piped.stderr) == (0, "")
    assert piped.stdout.startswith("Imported big.csv: 3000 added")
    (tmp_path / "cli.db").unlink()
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    terminal = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        terminal += chunk
    out = proc.communicate(timeout=120)[0].decode()
    os.close(leader)
    assert proc.returncode == 0
    assert b"Importing contacts" in terminal and b"100%" in terminal
    assert out.startswith("Imported big.csv: 3000 added")


def test_quiet_silences_every_command(config_file, tmp_path):
    """With -q the demo, import, add, list, suggest, stats, reminders and doctor print nothing; --json still prints."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    env.pop("SYNCAGENT_CONFIG", None)

    def quiet(*args):
        return subprocess.run([sys.executable, "-m", "syncagent", "-q", *args], env=env, capture_output=True,
                              text=True, timeout=120, cwd=home)

    demo = quiet("demo")
    assert (demo.returncode, demo.stdout, demo.stderr) == (0, "", "")
    config = str(home / ".local/share/syncagent/demo/config.toml")
    os.chmod(config, 0o600)
    path = tmp_path / "c.csv"
    path.write_text("name,email\nNew Person,new@person.test\n")
    for args in (["contacts", "import", str(path)], ["contacts", "add", "Other", "other@person.test"],
                 ["contacts", "list"], ["contacts", "suggest"], ["contacts", "suggest", "--add", "1"],
                 ["stats"], ["reminders", "--now", "2026-11-13T21:00:00Z"], ["reminders", "done", "3"],
                 ["sync"], ["doctor", "--offline"]):
        result = quiet("--config", config, *args)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), args
    listed = quiet("--config", config, "contacts", "list", "--json")
    assert len(json.loads(listed.stdout)) == 45
