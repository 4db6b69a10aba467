"""An issue the check refuses goes nowhere: not to members and not to the web. The issue archive
(its pages and the feeds of issues) holds only issues whose delivery began; a refused publish
leaves the archive as it was and the issue as it was, and the run after the fix sends it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli_support import run

ROOT = Path(__file__).resolve().parent.parent
BROKEN = "{{ first_name }}"  # template syntax left over: the message check refuses it


@pytest.fixture
def site(cli_site: Path) -> Path:
    return cli_site


def issue_list() -> list[dict[str, object]]:
    listed = run("issue", "list", "--json")
    assert listed.exit_code == 0, listed.output
    found: list[dict[str, object]] = json.loads(listed.stdout)
    return found


def archive(site: Path) -> dict[str, bytes]:
    folder = site / "public" / "issues"
    if not folder.is_dir():
        return {}
    files = (p for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in files}


def outbox(site: Path) -> list[Path]:
    new = site / "outbox" / "new"  # a Maildir
    return sorted(new.iterdir()) if new.is_dir() else []


def break_note(number: int) -> None:
    edited = run("issue", "edit", str(number), "--note", f"Dear {BROKEN}, read on.")
    assert edited.exit_code == 0, edited.output


@pytest.mark.parametrize("made_by", ["publish", "editor"])
def test_a_refused_publish_leaves_the_archive_and_the_issue_as_they_were_and_the_next_sends(
    site: Path, made_by: str
) -> None:
    if made_by == "editor":  # an issue the editor made (a draft), with a note that breaks it
        assert run("issue", "new").exit_code == 0
        break_note(1)
    else:  # an issue publish makes itself, from a digest template that breaks every issue
        templates = site / "my-templates" / "email"
        templates.mkdir(parents=True)
        digest = (ROOT / "templates" / "email" / "digest.html").read_text(encoding="utf-8")
        left_over = f"<p>{{% raw %}}{BROKEN}{{% endraw %}}</p></body>"
        (templates / "digest.html").write_text(
            digest.replace("</body>", left_over), encoding="utf-8"
        )
        config = site / "policyfeed.toml"
        config.write_text(
            config.read_text(encoding="utf-8").replace(
                "[build]\n", '[build]\ntemplates_dir = "my-templates"\n'
            ),
            encoding="utf-8",
        )
    assert run("build").exit_code == 0
    before = archive(site)
    assert before and not any(rel.startswith("1/") for rel in before)

    refused = run("publish")
    assert refused.exit_code == 1, refused.output
    assert refused.stdout.startswith("refused: issue 1"), refused.output
    assert outbox(site) == []
    assert archive(site) == before, "the refused issue reached the web archive"
    [issue] = issue_list()
    assert issue["status"] == "draft", issue  # as it was: nobody approved it, nothing began
    assert "issue 1" not in (site / "public" / "issues" / "feed.xml").read_text(encoding="utf-8")

    if made_by == "editor":
        assert run("issue", "edit", "1", "--note", "Read on.").exit_code == 0
    else:
        shutil.rmtree(site / "my-templates")
    sent = run("publish", "--json")
    assert sent.exit_code == 0, sent.output
    report = json.loads(sent.stdout)
    assert (report["status"], report["issue"]) == ("sent", 1)
    assert len(outbox(site)) == report["sent"] > 0
    assert issue_list()[0]["status"] == "sent"
    after = archive(site)
    assert "1/index.html" in after
    assert b"issue 1" in after["feed.xml"] or b"#1" in after["feed.xml"]


def test_an_approved_issue_is_not_on_the_web_until_its_delivery_begins(site: Path) -> None:
    config = site / "policyfeed.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[digest]\n", '[digest]\napproval = "required"\n'
        ),
        encoding="utf-8",
    )
    assert run("issue", "new").exit_code == 0
    assert run("issue", "approve", "1").exit_code == 0
    assert run("build").exit_code == 0
    assert "1/index.html" not in archive(site)
    sent = run("publish")
    assert sent.exit_code == 0, sent.output
    assert "1/index.html" in archive(site)
