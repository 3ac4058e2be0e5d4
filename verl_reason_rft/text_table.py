"""Plain-text tables for terminal reports (``reason-rft tasks``, ``prepare``, ``preflight``, benchmarks)."""

from __future__ import annotations

from typing import Iterable, Sequence


def format_table(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces, a dashed rule under the header."""
    cells = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths]), *(line(r) for r in cells[1:])])
