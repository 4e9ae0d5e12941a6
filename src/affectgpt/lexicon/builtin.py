"""Load the built-in affect lexicon (package data, our own curation) into a Lexicon and its WheelMaps.

The data file `data/affect_lexicon.tsv` has one emotion word (lemma) per line:

    lemma <TAB> valence <TAB> family per grouping ... <TAB> forms

- valence: a number in [-1, 1]; its sign is the word's polarity (0: neutral or ambivalent);
- one column per grouping named in the header (`group:<name>`): the family the lemma belongs to in that
  grouping, or `-` when that grouping does not place it (like `neutral` in the official wheels);
- forms: comma-separated surface forms (the lemma itself is always a form; multi-word forms allowed).

Lines starting with `#` are comments. Every form belongs to exactly one lemma, so lookup is one dict get.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from affectgpt.lexicon.wheelmaps import WheelMaps

BUILTIN_PROTOCOL = "builtin-1"
DATA_FILE = "affect_lexicon.tsv"


@dataclass(frozen=True)
class LexiconEntry:
    """One emotion word: its valence in [-1, 1] and its family in each grouping (None: not placed)."""

    lemma: str
    valence: float
    families: tuple[str | None, ...]
    forms: tuple[str, ...]


@dataclass(frozen=True)
class Lexicon:
    """The built-in affect lexicon.

    Attributes:
        groupings: the names of the family groupings (the built-in "wheels").
        entries: lemma -> entry.
        forms: surface form -> lemma (every lemma is a form of itself).
    """

    groupings: tuple[str, ...]
    entries: Mapping[str, LexiconEntry]
    forms: Mapping[str, str]

    def lemma(self, word: str) -> str | None:
        """The lemma of a surface form (exact, lower-case), or None for a non-emotion word."""
        return self.forms.get(word)

    def valence(self, word: str) -> float | None:
        lemma = self.forms.get(word)
        return None if lemma is None else self.entries[lemma].valence


def parse_lexicon(text: str, source: str = DATA_FILE) -> Lexicon:
    """Parse the TSV text of a lexicon; raises ValueError naming the line on any inconsistency."""
    groupings: tuple[str, ...] | None = None
    entries: dict[str, LexiconEntry] = {}
    forms: dict[str, str] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if groupings is None:
            groupings = _parse_header(cells, source, line_no)
            continue
        if len(cells) != len(groupings) + 3:
            raise ValueError(f"{source}:{line_no}: expected {len(groupings) + 3} tab-separated cells, "
                             f"found {len(cells)}")
        lemma = cells[0].strip()
        valence = float(cells[1])
        if not -1.0 <= valence <= 1.0:
            raise ValueError(f"{source}:{line_no}: valence {valence} outside [-1, 1]")
        families = tuple(None if c.strip() == "-" else c.strip() for c in cells[2:-1])
        word_forms = tuple(dict.fromkeys([lemma, *(f.strip() for f in cells[-1].split(",") if f.strip())]))
        if lemma in entries:
            raise ValueError(f"{source}:{line_no}: lemma {lemma!r} listed twice")
        for form in word_forms:
            if form != form.lower():
                raise ValueError(f"{source}:{line_no}: form {form!r} is not lower-case")
            if form in forms:
                raise ValueError(f"{source}:{line_no}: form {form!r} already belongs to {forms[form]!r}")
            forms[form] = lemma
        entries[lemma] = LexiconEntry(lemma, valence, families, word_forms)
    if groupings is None:
        raise ValueError(f"{source}: no header line")
    return Lexicon(groupings, entries, forms)


def _parse_header(cells: list[str], source: str, line_no: int) -> tuple[str, ...]:
    names = [c.strip() for c in cells]
    if names[:2] != ["lemma", "valence"] or names[-1] != "forms" or len(names) < 4:
        raise ValueError(f"{source}:{line_no}: header must be lemma, valence, group:<name>..., forms")
    groups = names[2:-1]
    if not all(g.startswith("group:") for g in groups):
        raise ValueError(f"{source}:{line_no}: grouping columns must be named group:<name>")
    return tuple(g[len("group:"):] for g in groups)


@functools.cache
def builtin_lexicon() -> Lexicon:
    """The package's lexicon, parsed on first use and kept."""
    text = resources.files("affectgpt.lexicon").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    return parse_lexicon(text)


def wheel_maps_of(lexicon: Lexicon, protocol: str = BUILTIN_PROTOCOL) -> WheelMaps:
    """Every surface form -> the families of its lemma, as WheelMaps for the shared metric code."""
    clusters = {form: lexicon.entries[lemma].families for form, lemma in lexicon.forms.items()}
    return WheelMaps(protocol, lexicon.groupings, clusters)


@functools.cache
def builtin_wheel_maps() -> WheelMaps:
    """The built-in protocol's WheelMaps."""
    return wheel_maps_of(builtin_lexicon())
