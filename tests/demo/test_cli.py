"""`sciti demo generate` as a person runs it."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from sciti.cli import demo


def app() -> typer.Typer:
    root = typer.Typer()
    demo.register(root)

    @root.callback()
    def _main() -> None:  # a group, as in sciti.cli.main
        pass

    return root


def test_generate_writes_the_world_and_prints_counts(tmp_path) -> None:
    out = tmp_path / "world"
    result = CliRunner().invoke(
        app(), ["demo", "generate", "--scale", "tiny", "--seed", "2", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "declarations/csv/declarations.csv" in result.output
    assert (out / "ground_truth" / "manifest.json").is_file()


def test_unknown_scale_fails_with_one_line_reason(tmp_path) -> None:
    result = CliRunner().invoke(app(), ["demo", "generate", "--scale", "huge", "--out", str(tmp_path / "w")])
    assert result.exit_code == 1
    assert "unknown scale 'huge'" in result.output
