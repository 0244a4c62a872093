"""``asyncstream bench``: measure streaming throughput and memory against raw HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from ._extras import needs_source_checkout

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")
_SCALE = {"": 1, "k": 1_000, "m": 1_000_000}


def parse_sizes(text: str) -> tuple[int, ...]:
    """``"1M,10M"`` or ``"20000, 200k"`` → sizes in paths, sorted, distinct."""
    sizes = set()
    for part in text.split(","):
        match = _SIZE.match(part)
        if not match:
            raise click.BadParameter(f"{part.strip()!r} is not a size like 20000 or 1M")
        size = int(float(match.group(1)) * _SCALE[match.group(2).lower()])
        if size < 1:
            raise click.BadParameter(f"{part.strip()!r}: a size must be at least 1")
        sizes.add(size)
    return tuple(sorted(sizes))


@click.command()
@click.option(
    "--quick",
    is_flag=True,
    help="Tiny sizes and caps, tracemalloc on the timed pass: a smoke test for CI"
    " (its figures mean little).",
)
@click.option(
    "--sizes",
    metavar="N,N",
    help="Path counts to run every row at, e.g. '1M,10M' or '50k,500k'."
    " [default: 1M,10M; 2k,20k with --quick]",
)
@click.option(
    "--tracemalloc",
    "trace",
    type=click.Choice(["separate", "inline", "off"]),
    default=None,
    help="separate: trace a second pass in the same child (timings stay clean);"
    " inline: trace the timed pass; off: no traced peak."
    " [default: separate; inline with --quick]",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every figure (per row and size, load, targets) to this file.",
)
@click.option(
    "--rows",
    "row_patterns",
    metavar="KEY,KEY",
    help="Only these rows (shell patterns on row keys, e.g."
    " 'expand.auto*,sender.sync.*'), with the rows they are compared with."
    " [default: every row]",
)
@click.option(
    "--files",
    is_flag=True,
    help="Measure file work instead: delete and move real files with the example"
    " handlers vs a raw loop, and a 2 ms-per-operation file system model."
    " --sizes N sets the files per row [default: 100k; 2k with --quick].",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=None,
    help="With --files: run every row this many times, alternated, and report the"
    " median [default: 3; 1 with --quick].",
)
@needs_source_checkout("asyncstream.bench")
def bench(
    quick: bool,
    sizes: str | None,
    trace: str | None,
    json_path: Path | None,
    row_patterns: str | None,
    files: bool,
    repeat: int | None,
) -> None:
    """Measure streaming throughput and memory against the raw HTTP ceilings.

    Hubs run in processes of their own on loopback; each row and size is
    measured in a fresh child process. Ends with a table whose "target" column
    checks the figures against the project's performance targets (listed in
    the README under "Measuring"). Exits with status 1 if a row failed to run
    (never because a target was missed). A tool for testing asyncstream
    itself: it runs from a source checkout, not from an installed wheel.
    """
    from rich.console import Console

    if files:
        from ..bench._filework_run import run_file_bench

        n = parse_sizes(sizes)[0] if sizes else 2_000 if quick else 100_000
        chosen_rows = tuple(p.strip() for p in (row_patterns or "").split(","))
        try:
            ok = run_file_bench(
                n,
                quick=quick,
                json_path=json_path,
                console=Console(),
                patterns=tuple(p for p in chosen_rows if p),
                repeat=repeat or (1 if quick else 3),
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--rows") from None
        if not ok:
            raise SystemExit(1)
        return

    from ..bench import DEFAULT_SIZES, QUICK_SIZES, Caps, evaluate_targets
    from ..bench._report import json_document, render_table, size_label
    from ..bench._results import target_needs
    from ..bench._rows import select_rows
    from ..bench._runner import BenchConfig, run_bench

    chosen = parse_sizes(sizes) if sizes else QUICK_SIZES if quick else DEFAULT_SIZES
    rows = None
    if row_patterns:
        patterns = tuple(p.strip() for p in row_patterns.split(",") if p.strip())
        try:
            rows = select_rows(patterns, target_needs())
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--rows") from None
    config = BenchConfig(
        sizes=chosen,
        caps=Caps.quick() if quick else Caps(),
        trace=trace or ("inline" if quick else "separate"),
        rows=rows,
    )
    console = Console()
    if not console.is_terminal:
        # Piped or redirected: rich would wrap the table at 80 columns.
        console = Console(width=180)
    outcome = run_bench(config, console=Console(stderr=True))
    targets = evaluate_targets(outcome.results)
    if rows is not None:
        targets = [t for t in targets if t.row in rows]
    load = outcome.meta["load"]
    caps = config.caps
    caption = (
        f"{', '.join(size_label(s) for s in chosen)} paths per row;"
        f" batch {config.batch_size}, {config.in_flight} in flight, page"
        f" {config.page_size}; {outcome.meta['seconds']:.0f}s; load average"
        f" {load['before'][0]:.2f} → {load['after'][0]:.2f}"
        f" on {outcome.meta['host']['cpus']} CPUs.\n"
        f"* measured at fewer paths and extrapolated: one POST per path at"
        f" {caps.post_per_path:,}, per-add hop at {caps.add_per_call:,},"
        f" +20 ms rows at {caps.latency:,}.\n"
        "x ceiling: paths/s over the raw row it is compared with (end to end: the"
        " slower of raw GET and raw POST → discard). Memory: smallest → largest"
        f" size; traced = tracemalloc peak ({config.trace} pass)."
    )
    console.print(render_table(outcome.results, targets, caption=caption, rows=rows))
    if json_path is not None:
        document = json_document(outcome.results, targets, outcome.meta)
        json_path.write_text(json.dumps(document, indent=2) + "\n")
        console.print(f"figures written to {json_path}")
    if outcome.results.errors:
        raise SystemExit(1)
