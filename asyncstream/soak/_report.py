"""The soak's figures: a record per round, the totals, the verdict, the JSON.

Each round records its results, batches, retries, duplicates absorbed, faults
asked for and applied, resends, elapsed time and the process's resident memory
(current and peak), so that growth across rounds shows.
"""

from __future__ import annotations

import resource
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._chaos import FAULT_KINDS
from ._check import Violation

if TYPE_CHECKING:
    from ._config import SoakConfig


@dataclass(slots=True)
class RoundRecord:
    """The figures and findings of one round."""

    number: int
    featured: str
    paths: int = 0
    tasks: list[str] = field(default_factory=list)
    results: int = 0
    batches: int = 0
    retries: int = 0
    duplicates: int = 0
    producer_retries: int = 0
    faults_requested: Counter[str] = field(default_factory=Counter)
    faults_fired: Counter[str] = field(default_factory=Counter)
    delivery_errors: int = 0
    resent_batches: int = 0
    resend_duplicates: int = 0
    restart_seconds: float = 0.0
    seconds: float = 0.0
    rss_kib: int = 0
    peak_rss_kib: int = 0
    notes: list[str] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "round": self.number,
            "featured": self.featured,
            "paths": self.paths,
            "tasks": self.tasks,
            "results": self.results,
            "batches": self.batches,
            "retries": self.retries,
            "duplicates_absorbed": self.duplicates + self.resend_duplicates,
            "producer_retries": self.producer_retries,
            "faults_requested": dict(self.faults_requested),
            "faults_fired": dict(self.faults_fired),
            "delivery_errors": self.delivery_errors,
            "resent_batches": self.resent_batches,
            "restart_seconds": round(self.restart_seconds, 3),
            "seconds": round(self.seconds, 3),
            "rss_kib": self.rss_kib,
            "peak_rss_kib": self.peak_rss_kib,
            "notes": self.notes,
            "violations": [v.as_json() for v in self.violations],
        }

    def line(self) -> str:
        faults = " ".join(f"{k}x{n}" for k, n in sorted(self.faults_requested.items()))
        fired = " ".join(f"{k} {n}" for k, n in sorted(self.faults_fired.items()))
        verdict = "ok" if not self.violations else f"{len(self.violations)} VIOLATIONS"
        return (
            f"round {self.number:3d} [{self.featured:>6}] paths {self.paths:5d}"
            f" tasks {','.join(self.tasks):<18} results {self.results:6d}"
            f" batches {self.batches:4d} retries {self.retries:4d}"
            f" dups {self.duplicates + self.resend_duplicates:3d}"
            f" faults [{faults or '-'}] fired [{fired or '-'}]"
            f" resent {self.resent_batches:3d}"
            f"{f' restart {self.restart_seconds:.1f}s' if self.restart_seconds else ''}"
            f" rss {self.rss_kib / 1024:6.1f}MiB"
            f" peak {self.peak_rss_kib / 1024:6.1f}MiB"
            f" {self.seconds:5.2f}s {verdict}"
        )


@dataclass(slots=True)
class SoakResult:
    """Every round, and the verdict."""

    config: SoakConfig
    rounds: list[RoundRecord] = field(default_factory=list)
    seconds: float = 0.0
    aborted: str | None = None

    @property
    def violations(self) -> list[Violation]:
        return [v for r in self.rounds for v in r.violations]

    def totals(self) -> dict[str, Any]:
        requested: Counter[str] = Counter()
        fired: Counter[str] = Counter()
        for r in self.rounds:
            requested.update(r.faults_requested)
            fired.update(r.faults_fired)
        return {
            "rounds": len(self.rounds),
            "results": sum(r.results for r in self.rounds),
            "batches": sum(r.batches for r in self.rounds),
            "retries": sum(r.retries for r in self.rounds),
            "duplicates_absorbed": sum(
                r.duplicates + r.resend_duplicates for r in self.rounds
            ),
            "delivery_errors": sum(r.delivery_errors for r in self.rounds),
            "resent_batches": sum(r.resent_batches for r in self.rounds),
            "faults_requested": {k: requested[k] for k in FAULT_KINDS},
            "faults_fired": dict(fired),
            "peak_rss_kib": max((r.peak_rss_kib for r in self.rounds), default=0),
            "violations": len(self.violations),
        }

    @property
    def missing_kinds(self) -> list[str]:
        requested = self.totals()["faults_requested"]
        return [k for k in FAULT_KINDS if not requested[k]]

    @property
    def ok(self) -> bool:
        return not self.violations and self.aborted is None

    def verdict(self) -> str:
        t = self.totals()
        head = "PASS" if self.ok else "FAIL"
        text = (
            f"{head}: {t['rounds']} rounds in {self.seconds:.1f}s, {t['results']}"
            f" results in {t['batches']} batches, {t['retries']} retries,"
            f" {t['duplicates_absorbed']} duplicates absorbed, faults"
            f" {t['faults_requested']}, {t['delivery_errors']} delivery errors"
            f" resent ({t['resent_batches']} batches), {t['violations']} violations"
        )
        if self.missing_kinds:
            text += f"; never injected: {', '.join(self.missing_kinds)}"
        if self.aborted:
            text += f"; stopped early: {self.aborted}"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "seed": self.config.seed,
            "quick": self.config.quick,
            "duration": self.config.duration,
            "seconds": round(self.seconds, 3),
            "ok": self.ok,
            "aborted": self.aborted,
            "totals": self.totals(),
            "rounds": [r.as_json() for r in self.rounds],
            "violations": [v.as_json() for v in self.violations],
        }


def rss_kib() -> tuple[int, int]:
    """(current, peak) resident set size of this process, in KiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        current = pages * resource.getpagesize() // 1024
    except OSError:
        current = peak
    return current, max(current, peak)
