"""WheelMaps: emotion word -> cluster per wheel, the compiled form every scoring protocol shares."""

from __future__ import annotations

import functools
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
            for k, cluster in enumerate(self.clusters.get(word, ())):
                if cluster is not None:
                    per_wheel[k].add(cluster)
        return tuple(frozenset(s) for s in per_wheel)

    @functools.cached_property
    def bits(self) -> ClusterBits:
        """The same knowledge as bit masks: the fast path of the scorer."""
        return ClusterBits.of(self)


@dataclass(frozen=True)
class ClusterBits:
    """Cluster sets of all wheels packed into one int: bit i is cluster i of the (wheel, name) list.

    `word_masks[w] & wheel_masks[k]` is word w's cluster in wheel k, so the cluster set of a word list in
    wheel k is an OR of ints followed by one AND, and set sizes are `int.bit_count()`.
    """

    word_masks: Mapping[str, int]
    wheel_masks: tuple[int, ...]
    names: tuple[tuple[int, str], ...]  # bit -> (wheel index, cluster name)

    @classmethod
    def of(cls, maps: WheelMaps) -> ClusterBits:
        index: dict[tuple[int, str], int] = {}
        word_masks = {}
        for word, row in maps.clusters.items():
            mask = 0
            for k, cluster in enumerate(row):
                if cluster is not None:
                    mask |= 1 << index.setdefault((k, cluster), len(index))
            word_masks[word] = mask
        wheel_masks = [0] * len(maps.wheels)
        for (k, _), bit in index.items():
            wheel_masks[k] |= 1 << bit
        return cls(word_masks, tuple(wheel_masks), tuple(sorted(index, key=index.__getitem__)))

    def mask(self, words: Iterable[str]) -> int:
        """The clusters of `words` in every wheel at once; unknown words add nothing."""
        get = self.word_masks.get
        out = 0
        for word in words:
            out |= get(word, 0)
        return out
