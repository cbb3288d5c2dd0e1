"""Keeps BENCHMARKS.md as one file of independently refreshed sections.

Each benchmark owns the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``, so
re-running one benchmark never touches the figures of another.
"""

from __future__ import annotations

import re
from pathlib import Path

HEADER = (
    "# Benchmarks\n\n"
    "Every figure here was written by the command shown with it, on the machine described in\n"
    "its section. Re-run a command to refresh its section; the others stay as they are.\n"
)


def write_section(path: Path, name: str, markdown: str, kind: str = "bench", header: str = HEADER) -> None:
    """Replace (or append) section ``name`` of ``path`` with ``markdown``. ``kind`` prefixes the
    markers (``bench`` in BENCHMARKS.md, ``reliability`` in RELIABILITY.md); ``header`` starts a
    file that does not exist yet."""
    begin, end = f"<!-- {kind}:{name} -->", f"<!-- /{kind}:{name} -->"
    block = f"{begin}\n{markdown.strip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.exists() else header
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), flags=re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
