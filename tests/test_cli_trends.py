"""`paperfeed trends`: the /trends chart as a PNG file, its caption on standard output."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.botapi.validation import validate_photo
from tests.fixtures.folder import copy_fixture_folder

runner = CliRunner()
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = copy_fixture_folder(tmp_path / "digests")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'db' / 'pf.db'}")
    monkeypatch.setenv("DIGEST_DIR", str(folder))
    return tmp_path


def test_trends_writes_a_png_and_prints_its_caption(env: Path) -> None:
    assert runner.invoke(app, ["ingest"]).exit_code == 0
    result = runner.invoke(app, ["trends"])
    assert result.exit_code == 0, result.output
    png = (env / "trends.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert validate_photo(png) == (1200, 700)
    assert result.stdout.splitlines() == [
        "📈 Papers per topic per week, 2024-02-27 – 2024-05-20 (12 weeks, 4 topics).",
        "🚀 Fastest-growing: Diffusion Models, 3 papers in the last 4 weeks, up from 0.",
    ]
    assert "wrote trends.png" in result.stderr

    out = env / "charts" / "nerf.png"
    out.parent.mkdir()
    result = runner.invoke(app, ["trends", "--tag", "nerf", "--weeks", "26", "--lang", "zh",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert validate_photo(out.read_bytes()) == (1200, 700)
    assert result.stdout.startswith("📈 NeRF：26 周共 3 篇论文，2023-11-21 – 2024-05-20。")


def test_trends_refuses_what_it_cannot_chart(env: Path) -> None:
    empty = runner.invoke(app, ["trends"])
    assert empty.exit_code == 1
    assert "the archive is empty" in empty.stderr
    assert not (env / "trends.png").exists()
    assert runner.invoke(app, ["ingest"]).exit_code == 0
    unknown = runner.invoke(app, ["trends", "--tag", "Nerv"])
    assert unknown.exit_code == 1
    assert "unknown tag 'Nerv' (did you mean NeRF?)" in unknown.stderr
    assert runner.invoke(app, ["trends", "--weeks", "105"]).exit_code == 2
    missing = runner.invoke(app, ["trends", "--out", str(env / "no" / "such" / "x.png")])
    assert missing.exit_code == 1
    assert "cannot write" in missing.stderr
