"""Tables that stay readable in a narrow terminal (80 columns).

The column that identifies a row (an entry's key, a node's name or URL) is never wrapped or cut:
a resource key cut to `FME_SHAREDRESOURCE_D…` on every row identifies nothing. The other
columns wrap (long words fold, nothing is replaced by `…`), and optional columns are left out
(highest `drop` first) when the table cannot fit otherwise; the caption names them (`--json`
always has everything).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

_NARROWEST_WRAP = 12  # a wrapping column is never planned narrower than this (or its header word)


@dataclass(frozen=True)
class Column:
    header: str
    key: bool = False  # identifies the row: always shown, never wrapped or cut
    drop: int = 0  # 0: always shown; else left out, highest first, when the table does not fit
    justify: str = "left"


def _plain(cell: str) -> str:
    return Text.from_markup(cell).plain


class FittedTable:
    """Collects rows, then builds a rich Table that fits `width` (see the module's doc)."""

    def __init__(self, title: str, columns: list[Column]) -> None:
        self.title = title
        self.columns = columns
        self.rows: list[tuple[list[str], bool]] = []

    def add_row(self, *cells: str, end_section: bool = False) -> None:
        self.rows.append((list(cells), end_section))

    def _narrowest(self, index: int) -> int:
        column = self.columns[index]
        cells = [_plain(row[index]) for row, _ in self.rows]
        if column.key:
            return max([len(column.header), *(len(c) for c in cells)])
        words = [len(w) for c in [column.header, *cells] for w in c.split()]
        return min(max([1, *words]), max(_NARROWEST_WRAP, len(column.header.split()[0])))

    def build(self, width: int) -> Table:
        kept = list(range(len(self.columns)))
        narrowest = {i: self._narrowest(i) for i in kept}

        def needed() -> int:  # cell widths + padding (2 each) + borders
            return sum(narrowest[i] + 2 for i in kept) + len(kept) + 1

        dropped: list[str] = []
        for level in sorted({c.drop for c in self.columns if c.drop}, reverse=True):
            if needed() <= width:
                break
            for i, c in enumerate(self.columns):
                if c.drop == level:
                    kept.remove(i)
                    dropped.append(c.header)
        caption = (f"left out at this width: {', '.join(dropped)} (see --json)"
                   if dropped else None)
        table = Table(title=self.title, caption=caption)
        for i in kept:
            c = self.columns[i]
            table.add_column(c.header, no_wrap=c.key, overflow="ellipsis" if c.key else "fold",
                             min_width=narrowest[i], justify=c.justify)  # type: ignore[arg-type]
        for cells, end_section in self.rows:
            table.add_row(*(cells[i] for i in kept), end_section=end_section)
        return table
