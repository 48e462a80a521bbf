"""`paperfeed preview FILE`: a digest's cards as the bot would send them, and what Telegram
would refuse."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app, button_problems, message_problems
from bot.domain.rendering import Button
from tests.fixtures.expected import FIXTURE_DIR, NON_DIGEST_PATH

runner = CliRunner()

TRAPS = "2024-04-02/Talking Head Generation.md"


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No .env and no operator settings leak into what the cards look like."""
    monkeypatch.chdir(tmp_path)
    for name in ("BLOG_BASE_URL", "DIGEST_DIR", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_preview_prints_cards_lengths_buttons_and_warnings() -> None:
    result = runner.invoke(app, ["preview", str(FIXTURE_DIR / TRAPS)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "2024-04-02/Talking Head Generation.md: topic Talking Head Generation" in out
    assert "<b>Headings Inside The Analysis</b>" in out  # the raw HTML, as sent
    assert "A&amp;A" in out
    assert "<blockquote expandable>" in out
    assert "✓ card 201/4096 UTF-16 units" in out
    assert "[📖 Analysis → an:2404.00041]" in out
    assert "[📄 PDF → https://arxiv.org/pdf/2404.00041v1]" in out
    assert "analysis: 1 message(s)" in out
    assert "section has an **Authors: line but no [PDF](…) line; skipped" in out
    assert "3 cards, 1 warning, 0 papers with messages Telegram would refuse" in out


def test_preview_compact_in_chinese_with_the_analysis() -> None:
    result = runner.invoke(app, ["preview", str(FIXTURE_DIR / TRAPS), "--style", "compact",
                                 "--lang", "zh", "--analysis"])
    assert result.exit_code == 0, result.output
    assert "<blockquote" not in result.output.split("analysis:")[0]  # compact: no abstract
    assert "[📖 解读 → an:2404.00041]" in result.output
    assert '<a href="https://arxiv.org/abs/2404.00041v1">arXiv:2404.00041</a>' in result.output


def test_preview_keeps_the_date_folder_and_prints_markup_literally(tmp_path: Path) -> None:
    folder = tmp_path / "digests" / "2024-07-01"
    folder.mkdir(parents=True)
    digest = folder / "Rich.md"
    digest.write_text(
        "# 2024-07-01 更新\n\n"
        "## [red]Not Markup[/red] :smile: Cards\n\n"
        "**Authors:Ada Example**\n\n"
        "An abstract with [bold]brackets[/bold].\n\n"
        "[PDF](http://arxiv.org/abs/2407.00001v1)\n",
        encoding="utf-8")
    result = runner.invoke(app, ["preview", str(digest)])
    assert result.exit_code == 0, result.output
    assert "2024-07-01/Rich.md: topic Rich, 2024-07-01" in result.output
    assert "<b>[red]Not Markup[/red] :smile: Cards</b>" in result.output
    assert "[bold]brackets[/bold]" in result.output


def test_preview_of_a_file_that_is_not_a_digest(tmp_path: Path) -> None:
    copy = tmp_path / NON_DIGEST_PATH
    shutil.copy(FIXTURE_DIR / NON_DIGEST_PATH, copy)
    result = runner.invoke(app, ["preview", str(copy)])
    assert result.exit_code == 1
    assert "not a daily digest" in result.output


def test_preview_of_a_missing_file() -> None:
    result = runner.invoke(app, ["preview", "nowhere/2024-01-01/NeRF.md"])
    assert result.exit_code == 2


def test_message_problems_name_what_telegram_would_refuse() -> None:
    assert message_problems("<b>fine</b> &amp; dandy") == []
    assert message_problems("") == ["empty message"]
    assert message_problems("<b> </b>") == ["no visible text (Telegram: message text is empty)"]
    [unclosed] = message_problems("<b>never closed")
    assert unclosed.startswith("invalid HTML: unclosed <b>")
    [unknown] = message_problems("<div>block</div>")
    assert unknown.startswith("invalid HTML: unsupported tag <div>")
    [bare] = message_problems("1 < 2")
    assert bare.startswith("invalid HTML")
    assert message_problems("x" * 4096) == []
    assert message_problems("x" * 4097) == ["too long: 4097/4096 UTF-16 units"]
    # Astral characters count twice, as Telegram counts them.
    assert message_problems("𝐱" * 2049) == ["too long: 4098/4096 UTF-16 units"]


def test_button_problems_name_what_telegram_would_refuse() -> None:
    fine = (Button("arXiv", url="https://arxiv.org/abs/2401.00001"),
            Button("📖", callback="an:2401.00001"))
    assert button_problems([fine]) == []
    [long] = button_problems([(Button("x", callback="an:" + "9" * 62),)])
    assert long == "button 'x': callback data of 65 bytes (1..64)"
    assert button_problems([[Button("x", callback="an:1")] * 9]) == [
        "row 1 has 9 buttons (at most 8)"]
    [relative] = button_problems([(Button("fig", url="./crop/1.png"),)])
    assert "would be refused" in relative
    [neither] = button_problems([(Button("?"),)])
    assert "neither a URL nor callback data" in neither
