"""Tables that stay readable in a narrow terminal (80 columns).

The column that identifies a row (an entry's key, a node's name or URL) is never wrapped or cut:
a resource key cut to `FME_SHAREDRESOURCE_D…` on every row identifies nothing. The other
columns wrap (long words fold, nothing is replaced by `…`). When the table is still too wide,
in this order: columns empty on every row are left out; optional columns are left out (highest
`drop` first) and the caption names them (`--json` always has everything); the outer border
goes; the widest columns fold words longer than 8 characters (one `unreachable` among
`create`s); then the remaining non-key columns, rightmost first, are printed under the table
instead, one line per row (`fme-2 problem: …`), so their text stays whole (and the border comes
back if it fits). Only when the key columns alone are wider than the terminal do they wrap
(folded, never cut). A built table is never wider than the width it was built for: the
terminal would otherwise crop its right-hand columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import StringIO

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

_NARROWEST_WRAP = 12  # a wrapping column is never planned narrower than this (or its header word)
_SQUEEZED = 8  # ...unless the table does not fit otherwise: then down to this, folding words


@dataclass(frozen=True)
class Column:
    header: str
    key: bool = False  # identifies the row: always shown, never wrapped or cut
    drop: int = 0  # 0: always shown; else left out, highest first, when the table does not fit
    justify: str = "left"


def _plain(cell: str) -> str:
    return Text.from_markup(cell).plain


def _width_of(table: Table, width: int) -> int:
    """How wide `table` renders when given `width`: rich may exceed it (a column's min_width
    wins over the terminal's width, and the terminal then crops the right-hand columns). The
    column layout alone, as `Table.__rich_console__` computes it: 5× cheaper than rendering.
    Private rich API (rich is pinned); tests/test_rendering.py fails if it changes."""
    console = Console(file=StringIO(), width=max(width, 1000), color_system=None)
    extra = table._extra_width
    return sum(table._calculate_column_widths(console, console.options.update_width(
        width - extra))) + extra


class FittedTable:
    """Collects rows, then builds a renderable that fits `width` (see the module's doc)."""

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

    def _empty(self, index: int) -> bool:
        return not any(_plain(row[index]).strip() for row, _ in self.rows)

    def _row_names(self) -> list[str]:
        """What names each row in a line under the table: its key cells, as few as identify
        every row (the node alone in `nodes`; node and entry key in a rollback)."""
        keys = [i for i, c in enumerate(self.columns) if c.key] or [0]
        for n in range(1, len(keys) + 1):
            names = [" ".join(_plain(row[i]) for i in keys[:n] if _plain(row[i]))
                     for row, _ in self.rows]
            if len(set(names)) == len(names):
                return names
        return names

    def _table(self, kept: list[int], dropped: list[str], edge: bool, fold_keys: bool,
               narrowest: dict[int, int]) -> Table:
        caption = (f"left out at this width: {', '.join(dropped)} (see --json)"
                   if dropped else None)
        table = Table(title=self.title, caption=caption, show_edge=edge)
        for i in kept:
            c = self.columns[i]
            whole = c.key and not fold_keys
            table.add_column(c.header, no_wrap=whole, overflow="ellipsis" if whole else "fold",
                             min_width=narrowest[i] if whole or not c.key else None,
                             justify=c.justify)  # type: ignore[arg-type]
        for cells, end_section in self.rows:
            table.add_row(*(cells[i] for i in kept), end_section=end_section)
        return table

    def build(self, width: int) -> RenderableType:
        kept = list(range(len(self.columns)))
        wanted = {i: self._narrowest(i) for i in kept}
        narrowest = dict(wanted)  # as planned now: a squeezed column folds its longer words
        dropped: list[str] = []
        below: list[int] = []  # columns printed under the table, one line per row
        edge, fold_keys = True, False

        def table() -> Table:
            return self._table(kept, dropped, edge, fold_keys, narrowest)

        checked: dict[tuple[object, ...], bool] = {}

        def fits() -> bool:  # the sum of the planned widths first: rendering costs more
            planned = sum(narrowest[i] + 2 for i in kept) + len(kept) + (1 if edge else -1)
            if planned > width:
                return False
            state = (tuple(kept), edge, tuple(narrowest[i] for i in kept))
            if state not in checked:
                checked[state] = _width_of(table(), width) <= width
            return checked[state]

        def squeezed_fits() -> bool:
            """Fits once the widest non-key columns fold words longer than they are (one
            `unreachable` in a column of `create`s), but none narrower than _SQUEEZED."""
            narrowest.update(wanted)
            while not fits():
                wide = [i for i in kept if not self.columns[i].key and narrowest[i] > _SQUEEZED]
                if not wide:
                    narrowest.update(wanted)
                    return False
                narrowest[max(wide, key=lambda i: narrowest[i])] -= 1
            return True

        if not fits():
            kept = [i for i in kept if self.columns[i].key or not self._empty(i)]
        for level in sorted({c.drop for c in self.columns if c.drop}, reverse=True):
            if fits():
                break
            for i, c in enumerate(self.columns):
                if c.drop == level and i in kept:
                    kept.remove(i)
                    dropped.append(c.header)
        if not fits():
            edge = False
        while not squeezed_fits():
            movable = [i for i in kept if not self.columns[i].key]
            if not movable:
                fold_keys = True
                break
            kept.remove(movable[-1])
            below.insert(0, movable[-1])
        if below and not fold_keys and not edge:
            edge = True  # with a column under the table, the border may fit again
            edge = fits()
        if not below:
            return table()
        names = self._row_names()
        lines = [Text.assemble((names[r], "bold"), f" {self.columns[i].header}: ",
                               Text.from_markup(cells[i]))
                 for r, (cells, _) in enumerate(self.rows) for i in below
                 if _plain(cells[i]).strip()]
        return Group(table(), *lines)
