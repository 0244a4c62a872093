"""The end of a run: the table (cells built without rich, then drawn) and JSON.

:func:`table_cells` is pure so it can be tested; :func:`render_table` only adds
rich styling; :func:`json_document` holds every figure, per row and size.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from rich.table import Table

from ._results import BenchResults, TargetResult
from ._rows import ROWS, RowSpec

MIB = 1024 * 1024
MET, MISSED, UNKNOWN = "✓", "✗", "?"


def size_label(n: int) -> str:
    """``1M``, ``10M``, ``20k``, ``1500``: sizes as a column header shows them."""
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def _verdict(target: TargetResult) -> str:
    mark = UNKNOWN if target.met is None else MET if target.met else MISSED
    value = "n/a" if target.value is None else f"{target.value:.2f}x"
    detail = f" ({target.detail})" if target.detail else ""
    return f"{mark} {target.text}: {value}{detail}"


def _memory(results: BenchResults, row: str, attr: str, digits: int) -> str:
    cells = []
    for size in sorted(results.sizes):
        m = results.get(row, size)
        value = None if m is None else getattr(m, attr)
        star = "*" if results.extrapolated(row, size) else ""
        cells.append("—" if value is None else f"{value / MIB:,.{digits}f}{star}")
    return " → ".join(cells)


def headers(sizes: Iterable[int]) -> list[str]:
    """Column titles; one paths/s column per size."""
    ordered = sorted(sizes)
    return [
        "group",
        "row",
        *(f"paths/s @{size_label(s)}" for s in ordered),
        f"x ceiling @{size_label(ordered[-1])}",
        "peak RSS MiB",
        "traced MiB",
        "target",
    ]


def row_cells(
    results: BenchResults, spec: RowSpec, targets: list[TargetResult]
) -> list[str]:
    """The cells of one row, as plain text."""
    sizes = sorted(results.sizes)
    if spec.key in results.errors:
        error = f"failed: {results.errors[spec.key]}"[:60]
        return [spec.group, spec.label, *("—" for _ in sizes), "—", "—", "—", error]
    rates = []
    for size in sizes:
        rate = results.rate(spec.key, size)
        star = "*" if results.extrapolated(spec.key, size) else ""
        rates.append("—" if rate is None else f"{rate:,.0f}{star}")
    ratio = results.ratio(spec, sizes[-1])
    ceiling = "—" if ratio is None else f"{ratio:.2f}"
    verdicts = [_verdict(t) for t in targets if t.row == spec.key]
    return [
        spec.group,
        spec.label,
        *rates,
        ceiling,
        _memory(results, spec.key, "rss_peak", 0),
        _memory(results, spec.key, "traced_peak", 1),
        "\n".join(verdicts),
    ]


def table_cells(
    results: BenchResults,
    targets: list[TargetResult],
    rows: frozenset[str] | None = None,
) -> tuple[list[str], list[list[str]]]:
    """Headers and the cells of every row (of ``rows``, if given), in the order
    of :data:`ROWS`."""
    shown = [s for s in ROWS if rows is None or s.key in rows]
    return headers(results.sizes), [row_cells(results, s, targets) for s in shown]


def render_table(
    results: BenchResults,
    targets: list[TargetResult],
    *,
    caption: str,
    rows: frozenset[str] | None = None,
) -> Table:
    """The rich table: targets met in green, missed in red."""
    head, rows_cells = table_cells(results, targets, rows)
    table = Table(title="asyncstream bench", caption=caption, caption_justify="left")
    for index, title in enumerate(head):
        numeric = 2 <= index < len(head) - 1
        table.add_column(
            title, justify="right" if numeric else "left", no_wrap=index < len(head) - 1
        )
    group = None
    for cells in rows_cells:
        shown = "" if cells[0] == group else cells[0]
        group = cells[0]
        target = (
            cells[-1]
            .replace(MET, f"[green]{MET}[/]")
            .replace(MISSED, f"[red]{MISSED}[/]")
        )
        table.add_row(shown, *cells[1:-1], target, end_section=False)
    return table


def json_document(
    results: BenchResults, targets: list[TargetResult], meta: dict[str, Any]
) -> dict[str, Any]:
    """Every figure of the run, JSON-serialisable."""
    rows = []
    for spec in ROWS:
        per_size = {}
        for size in sorted(results.sizes):
            m = results.get(spec.key, size)
            if m is None:
                continue
            per_size[str(size)] = {
                **asdict(m),
                "rate": m.rate,
                "extrapolated": results.extrapolated(spec.key, size),
                "ratio_to_ceiling": results.ratio(spec, size),
            }
        rows.append(
            {
                "key": spec.key,
                "group": spec.group,
                "label": spec.label,
                "ceiling": list(spec.ceiling),
                "error": results.errors.get(spec.key),
                "sizes": per_size,
            }
        )
    return {
        **meta,
        "sizes": sorted(results.sizes),
        "rows": rows,
        "targets": [asdict(t) for t in targets],
    }
