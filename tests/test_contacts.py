"""Contacts: address normalisation, CSV / LinkedIn / vCard import, idempotence, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from syncagent.cli import cli
from syncagent.contacts import book as contacts
from syncagent.contacts.importing import import_file, read_records
from syncagent.errors import InputError
from syncagent.store.db import open_db


@pytest.fixture
def db(tmp_path):
    """A fresh, migrated database."""
    return open_db(tmp_path / "syncagent.db")


@pytest.fixture
def config_file(tmp_path):
    """A config with only a database path: contacts commands need no accounts."""
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\npath = "{tmp_path / "cli.db"}"\n')
    return path


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def people(db) -> list[tuple]:
    return [(c["name"], c["emails"], c["company"]) for c in contacts.list_contacts(db)]


def test_split_addresses_on_semicolons_and_unambiguous_commas():
    """';' always separates; ',' only when every piece is an address, so "Doe, Jane <...>" stays whole."""
    assert contacts.split_addresses("a@x.org; b@y.org") == ["a@x.org", "b@y.org"]
    assert contacts.split_addresses("a@x.org, b@y.org") == ["a@x.org", "b@y.org"]
    assert contacts.split_addresses('Doe, Jane <jane@x.org>') == ["Doe, Jane <jane@x.org>"]


def test_csv_with_bom_semicolon_delimiter_and_multi_address_cell(db, tmp_path):
    """A semicolon-delimited CSV with a BOM and case-varied headers imports every field."""
    path = write(tmp_path, "contacts.csv", (
        "\ufeffName;EMAILS;Company;Title;Segment;Tags;Notes;Cadence_Days\n"
        'Jane Doe;"jane@example.com, Jane@Home.example";Acme;CTO;alumni;mentor, warm;Met at PyCon;30\n'
        "Bob Roe;bob@example.org;Initech;;recruiters;;;\n"
    ))
    report = import_file(db, path)
    assert (report.format, report.added, report.updated, report.unchanged, report.skipped) == ("CSV", 2, 0, 0, [])
    jane = contacts.find(db, "JANE@home.example")
    assert {k: jane[k] for k in ("name", "emails", "company", "title", "segment", "tags", "notes", "cadence_days")} == {
        "name": "Jane Doe", "emails": ["jane@example.com", "jane@home.example"], "company": "Acme",
        "title": "CTO", "segment": "alumni", "tags": "mentor, warm", "notes": "Met at PyCon", "cadence_days": 30.0,
    }
    assert contacts.find(db, "bob@example.org")["company"] == "Initech"


def test_semicolons_inside_a_comma_csv_cell(db, tmp_path):
    """In a comma CSV, one cell holds several addresses separated by ';'."""
    path = write(tmp_path, "c.csv", "name,email\nJane,jane@example.com;jane@home.example\n")
    import_file(db, path)
    assert people(db) == [("Jane", ["jane@example.com", "jane@home.example"], None)]


def test_tab_delimited_and_windows_1252(db, tmp_path):
    """A tab-separated file saved by a spreadsheet in Windows-1252 reads correctly."""
    path = write(tmp_path, "c.tsv", "email\tname\r\nrene@example.fr\tRené Dupré\r\n", encoding="cp1252")
    import_file(db, path)
    assert people(db) == [("René Dupré", ["rene@example.fr"], None)]


def test_bad_rows_are_reported_with_reasons_and_never_stop_the_import(db, tmp_path):
    """Rows without a usable address or with a bad value are skipped with row number and reason."""
    path = write(tmp_path, "c.csv", (
        "name,email,cadence_days\n"
        "No Mail,,\n"                       # row 2
        "Typo,jane-at-example.com,\n"       # row 3
        "Good,good@example.com,\n"          # row 4
        "Bad cadence,x@example.com,soon\n"  # row 5
        "\n"                                # row 6: blank, ignored
        "Also good,ok@example.com,\n"       # row 7
    ))
    report = import_file(db, path)
    assert report.added == 2
    assert [str(s) for s in report.skipped] == [
        "row 2: no address",
        "row 3: bad address 'jane-at-example.com'",
        "row 5: bad cadence_days 'soon' (a number of days)",
    ]


def test_reimport_is_idempotent_and_updates_only_non_empty_values(db, tmp_path):
    """A second import counts unchanged rows, updates changed ones, adds addresses, never duplicates."""
    first = write(tmp_path, "a.csv", "name,email,company\nJane,jane@example.com,Acme\nBob,bob@example.org,Initech\n")
    report = import_file(db, first)
    assert (report.added, report.updated, report.unchanged) == (2, 0, 0)
    report = import_file(db, first)
    assert (report.added, report.updated, report.unchanged) == (0, 0, 2)
    # Jane found by her known address gains a second one; Bob's empty company keeps the old value.
    second = write(tmp_path, "b.csv", (
        "name,email,company\nJane Doe,jane@home.example;JANE@example.com,\nBob,bob@example.org,\nNew,new@example.net,\n"
    ))
    report = import_file(db, second)
    assert (report.added, report.updated, report.unchanged) == (1, 1, 1)
    assert people(db) == [
        ("Jane Doe", ["jane@example.com", "jane@home.example"], "Acme"),
        ("Bob", ["bob@example.org"], "Initech"),
        ("New", ["new@example.net"], None),
    ]


def test_row_whose_addresses_belong_to_two_contacts_is_skipped(db, tmp_path):
    """A row naming addresses of two existing contacts is skipped instead of merging them."""
    import_file(db, write(tmp_path, "a.csv", "name,email\nJane,jane@example.com\nBob,bob@example.org\n"))
    report = import_file(db, write(tmp_path, "b.csv", "name,email\nMix,jane@example.com;bob@example.org\n"))
    assert len(report.skipped) == 1
    assert report.skipped[0].where == "row 2"
    assert "belong to two contacts" in report.skipped[0].reason
    assert len(contacts.list_contacts(db)) == 2


LINKEDIN = (
    "Notes:\n"
    '"When exporting your connection data, you may notice that some of the email addresses are missing. '
    'You will only see email addresses for connections who have allowed their connections to see or '
    'download their email address using this setting https://www.linkedin.com/psettings/privacy/email. '
    'You can learn more here https://www.linkedin.com/help/linkedin/answer/261"\n'
    "\n"
    "First Name,Last Name,URL,Email Address,Company,Position,Connected On\n"
    "Jane,Doe,https://www.linkedin.com/in/janedoe,jane@example.com,Acme,CTO,12 Mar 2024\n"
    "John,Smith,https://www.linkedin.com/in/jsmith,,Initech,Engineer,01 Feb 2023\n"
    'Ana,"García, PhD",https://www.linkedin.com/in/ana,ana@example.es,"Acme, Inc.",Director,05 Jan 2022\n'
)


def test_linkedin_export_with_notes_lines(db, tmp_path):
    """The header after LinkedIn's notes is found; rows without an email are skipped as "no address"."""
    report = import_file(db, write(tmp_path, "Connections.csv", LINKEDIN))
    assert report.format == "LinkedIn connections"
    assert (report.added, [str(s) for s in report.skipped]) == (2, ["row 6: no address"])
    jane = contacts.find(db, "jane@example.com")
    assert (jane["name"], jane["company"], jane["title"], jane["url"]) == (
        "Jane Doe", "Acme", "CTO", "https://www.linkedin.com/in/janedoe")
    assert contacts.find(db, "ana@example.es")["company"] == "Acme, Inc."


VCARDS = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jane Doe\r\nN:Doe;Jane;;;\r\n"
    "EMAIL;TYPE=INTERNET;TYPE=WORK:jane@example.com\r\nEMAIL;TYPE=INTERNET;TYPE=HOME:Jane@Home.example\r\n"
    "item1.EMAIL;TYPE=INTERNET:jane.doe@other.example\r\n"
    "ORG:Acme;Research\r\nTITLE:CTO\r\nCATEGORIES:mentor,myContacts\r\nNOTE:Met at PyCon\\, 2025\r\nEND:VCARD\r\n"
    "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Bob Roe\r\nEMAIL;TYPE=work:bob@example.org\r\n"
    "EMAIL;PREF=1:robert@example.net\r\nORG:Initech\r\nEND:VCARD\r\n"
    "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Nomail;Nora;;;\r\nTEL:+1 555 0100\r\nEND:VCARD\r\n"
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Broken Card\r\nBDAY:not-a-date\r\nthis line has no colon\r\n"
    "EMAIL:broken@example.com\r\nEND:VCARD\r\n"
)


def test_vcard_3_and_4_with_several_emails(db, tmp_path):
    """Google-style vCards import FN, every EMAIL, ORG, TITLE, CATEGORIES and NOTE; a broken card falls back."""
    report = import_file(db, write(tmp_path, "contacts.vcf", VCARDS))
    assert report.format == "vCard"
    assert (report.added, [str(s) for s in report.skipped]) == (3, ["card 3 (Nora Nomail): no address"])
    jane = contacts.find(db, "jane.doe@other.example")
    assert {k: jane[k] for k in ("name", "emails", "company", "title", "tags", "notes")} == {
        "name": "Jane Doe",
        "emails": ["jane@example.com", "jane@home.example", "jane.doe@other.example"],
        "company": "Acme Research", "title": "CTO", "tags": "mentor", "notes": "Met at PyCon, 2025",
    }
    assert contacts.find(db, "robert@example.net")["emails"] == ["bob@example.org", "robert@example.net"]
    assert contacts.find(db, "broken@example.com")["name"] == "Broken Card"
    again = import_file(db, write(tmp_path, "contacts.vcf", VCARDS))
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)


def test_vcard_content_detected_without_vcf_extension(tmp_path):
    """A vCard saved as .txt is still read as vCards."""
    label, records = read_records(write(tmp_path, "export.txt", VCARDS))
    assert label == "vCard" and len(records) == 4


def test_wrong_columns_is_one_sentence_naming_the_file(db, tmp_path):
    """A CSV without an email column raises InputError naming the file and the columns expected."""
    path = write(tmp_path, "orders.csv", "order,amount\n1,20\n")
    with pytest.raises(InputError) as err:
        import_file(db, path)
    text = str(err.value)
    assert str(path) in text and "name and email" in text and text.count(".") >= 1 and "\n" not in text


def test_missing_file_is_an_input_error(db, tmp_path):
    """A path that does not exist is an InputError sentence, not a traceback."""
    with pytest.raises(InputError, match="There is no file"):
        import_file(db, tmp_path / "nope.csv")


def test_add_updates_when_an_address_exists(db):
    """`add` with a known address updates that contact and appends the new address."""
    assert contacts.add(db, contacts.ContactInput("Jane", ["jane@example.com"]))[0] == "added"
    outcome, cid = contacts.add(db, contacts.ContactInput("Jane", ["new@example.com", "JANE@example.com"], segment="alumni"))
    assert outcome == "updated"
    assert contacts.get(db, cid)["emails"] == ["jane@example.com", "new@example.com"]
    with pytest.raises(InputError, match="bad address"):
        contacts.add(db, contacts.ContactInput("X", ["nope"]))


def test_list_shows_ledger_state_only_when_the_ledger_table_exists(db):
    """`state` comes from contact_ledger when that table exists, and list still works without it."""
    _, cid = contacts.add(db, contacts.ContactInput("Jane", ["jane@example.com"]))
    db.execute("DELETE FROM contact_ledger")
    db.execute("INSERT INTO contact_ledger (contact_id, state, computed_at) VALUES (?, 'ASKED', '2026-11-20T00:00:00Z')", [cid])
    assert contacts.list_contacts(db)[0]["state"] == "ASKED"
    db.execute("DROP TABLE contact_ledger")
    assert "state" not in contacts.list_contacts(db)[0]


# --- the command line --------------------------------------------------------

def run(config_file, *args):
    return CliRunner().invoke(cli, ["--config", str(config_file), "contacts", *args], catch_exceptions=False)


def test_cli_import_add_and_list(config_file, tmp_path):
    """`contacts import`, `add` and `list` work with a config that has no accounts."""
    path = write(tmp_path, "contacts.csv", "name,email,segment\nJane,jane@example.com,alumni\nNobody,,\n")
    result = run(config_file, "import", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == "Imported contacts.csv: 1 added, 0 updated, 0 unchanged, 1 skipped\n  skipped row 3: no address\n"
    result = run(config_file, "add", "Bob Roe", "bob@example.org", "--company", "Initech", "--cadence-days", "30")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Added contact 2: Bob Roe <bob@example.org>")
    result = run(config_file, "list", "--json")
    rows = json.loads(result.stdout)
    assert [(r["name"], r["email"], r["segment"], r["cadence_days"]) for r in rows] == [
        ("Jane", "jane@example.com", "alumni", None), ("Bob Roe", "bob@example.org", None, 30.0)]
    table = run(config_file, "list").stdout.splitlines()
    assert table[0].split()[:5] == ["id", "name", "email", "company", "segment"]
    assert "jane@example.com" in table[1]


def test_cli_wrong_columns_exits_1_with_one_sentence(config_file, tmp_path):
    """Through the real entry point a wrong file prints `Error: <sentence>` and exits 1, no traceback."""
    path = write(tmp_path, "orders.csv", "order,amount\n1,20\n")
    proc = subprocess.run(
        [sys.executable, "-m", "syncagent", "--config", str(config_file), "contacts", "import", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: ") and "orders.csv" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_every_contacts_command_has_help_with_an_example(config_file):
    """Each contacts command explains itself and shows an example."""
    for args in ([], ["import"], ["add"], ["list"]):
        result = run(config_file, *args, "--help")
        assert result.exit_code == 0 and "Example:" in result.output


def test_vcf_without_cards_is_an_input_error(db, tmp_path):
    """A .vcf file with no vCard in it is refused with a sentence, not imported as nothing."""
    with pytest.raises(InputError, match="holds no vCard"):
        import_file(db, write(tmp_path, "empty.vcf", "hello\n"))


def test_google_contacts_csv_with_numbered_email_columns(db, tmp_path):
    """Google's CSV export ("E-mail 1 - Value", "a ::: b" cells, Labels) reads every address."""
    path = write(tmp_path, "contacts.csv", (
        "First Name,Middle Name,Last Name,Labels,E-mail 1 - Label,E-mail 1 - Value,E-mail 2 - Label,"
        "E-mail 2 - Value,Organization Name,Organization Title\n"
        "Jane,,Doe,* myContacts ::: mentors,* Work,jane@example.com ::: jd@example.com,Home,jane@home.example,Acme,CTO\n"
    ))
    report = import_file(db, path)
    assert (report.added, report.skipped) == (1, [])
    jane = contacts.find(db, "jd@example.com")
    assert (jane["name"], jane["emails"], jane["company"], jane["title"], jane["tags"]) == (
        "Jane Doe", ["jane@example.com", "jd@example.com", "jane@home.example"], "Acme", "CTO", "mentors")
