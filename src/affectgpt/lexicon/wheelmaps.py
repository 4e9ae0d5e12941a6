"""WheelMaps: emotion word -> cluster per wheel, the compiled form every scoring protocol shares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WheelMaps:
    """A scoring protocol's whole word knowledge, compiled for O(1) lookup.

    Attributes:
        protocol: the protocol id recorded in every result ("official-2025", "official-2026",
            "builtin-1", or "official-custom-<sha>").
        wheels: the names of the groupings ("wheel1".."wheel5" for the official protocol).
        clusters: word (an exact, lower-case surface form) -> one cluster name per wheel, or None where
            that wheel maps the word to nothing. Words absent from this table are unknown to the protocol.
        sources: file name -> SHA-256 of the data it was compiled from (empty for package data).
    """

    protocol: str
    wheels: tuple[str, ...]
    clusters: Mapping[str, tuple[str | None, ...]]
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        width = len(self.wheels)
        for word, row in self.clusters.items():
            if len(row) != width:
                raise ValueError(f"word {word!r} has {len(row)} clusters, expected {width}")

    def knows(self, word: str) -> bool:
        return word in self.clusters

    def cluster_sets(self, words: Iterable[str]) -> tuple[frozenset[str], ...]:
        """The set of clusters of `words` in each wheel; unknown and unmapped words are dropped."""
        per_wheel: list[set[str]] = [set() for _ in self.wheels]
        for word in words:
            row = self.clusters.get(word)
            if row is None:
                continue
            for k, cluster in enumerate(row):
                if cluster is not None:
                    per_wheel[k].add(cluster)
        return tuple(frozenset(s) for s in per_wheel)
