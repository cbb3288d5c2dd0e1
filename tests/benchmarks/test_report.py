"""BENCHMARKS.md sections are refreshed independently of each other."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import write_section


def test_rewriting_one_section_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    write_section(path, "sim", "## Sim\nold sim figures")
    write_section(path, "runtime", "## Runtime\nruntime figures")
    write_section(path, "sim", "## Sim\nnew sim figures")

    text = path.read_text(encoding="utf-8")
    assert "new sim figures" in text
    assert "old sim figures" not in text
    assert "runtime figures" in text
    assert text.index("## Sim") < text.index("## Runtime"), "a refreshed section keeps its place"


def test_section_text_with_backslashes_is_written_verbatim(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    write_section(path, "ros", "a \\1 b")
    write_section(path, "ros", "c \\1 d")
    assert "c \\1 d" in path.read_text(encoding="utf-8")
