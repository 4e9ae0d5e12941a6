"""The official wheel files compiled into WheelMaps: the quirks that published numbers depend on,
version detection, the compiled cache, and errors for a broken wheel folder."""

from __future__ import annotations

import shutil

import pytest

from affectgpt.errors import InputError
from affectgpt.lexicon import official
from affectgpt.lexicon.official import load_official, read_wheel

pytestmark = pytest.mark.reference


@pytest.fixture(scope="module")
def maps_2025(reference_dir):
    return load_official(reference_dir / "emotion_wheel", use_cache=False)


def test_neutral_maps_to_nothing_in_every_wheel(maps_2025):
    assert maps_2025.cluster_sets(["neutral"]) == (frozenset(),) * 5
    assert maps_2025.bits.mask(["neutral"]) == 0


# Facts read off the spreadsheets by hand (wheel2.xlsx rows 31 and 80): a word listed twice takes the
# level1 word of its LAST row.
@pytest.mark.parametrize(("word", "level1"), [("overwhelmed", "bad"), ("inferior", "sad"),
                                              ("embarrassed", "sad"), ("disappointed", "sad")])
def test_wheel2_duplicates_resolve_last_wins(reference_dir, word, level1):
    assert read_wheel(reference_dir / "emotion_wheel" / "wheel2.xlsx")[word] == level1


def test_wheel_cells_are_stripped_and_lower_cased(reference_dir):
    wheel5 = read_wheel(reference_dir / "emotion_wheel" / "wheel5.xlsx")  # cells carry trailing spaces
    assert wheel5["jealous"] == "mad" and "mad " not in wheel5.values()


def test_fear_lands_in_a_happy_like_cluster_in_2025_but_not_in_2026(reference_dir, maps_2025):
    happy = maps_2025.clusters["happy"]
    fear = maps_2025.clusters["fear"]
    assert fear[0] == maps_2025.clusters["afraid"][0]  # wheel 1 is right
    assert fear[1] == happy[1]  # the bad surface form in format.csv: alphabetical choice lands on happy
    maps_2026 = load_official(reference_dir / "emotion_wheel-2026", use_cache=False)
    assert maps_2026.clusters["fear"][1] == maps_2026.clusters["afraid"][1] != happy[1]


def test_versions_are_recognised(reference_dir, maps_2025):
    assert maps_2025.protocol == "official-2025"
    assert load_official(reference_dir / "emotion_wheel-2026").protocol == "official-2026"
    assert set(maps_2025.sources) == set(official.WHEEL_FILES)


def test_edited_files_get_a_custom_protocol_id(reference_dir, tmp_path):
    folder = tmp_path / "wheels"
    shutil.copytree(reference_dir / "emotion_wheel", folder)
    with open(folder / "format.csv", "a", encoding="utf-8") as handle:
        handle.write('zestful,"zestful,zest"\n')
    maps = load_official(folder, use_cache=False)
    assert maps.protocol.startswith("official-custom-")
    assert "zest" in maps.clusters


def test_an_edited_spreadsheet_is_not_taken_for_a_published_version(reference_dir, tmp_path):
    folder = tmp_path / "wheels"
    shutil.copytree(reference_dir / "emotion_wheel", folder)
    shutil.copy(folder / "wheel1.xlsx", folder / "wheel2.xlsx")  # format.csv untouched
    assert load_official(folder, use_cache=False).protocol.startswith("official-custom-")


def test_compiled_cache_is_used_on_the_second_load(reference_dir, isolated_cache, monkeypatch):
    first = load_official(reference_dir / "emotion_wheel")
    assert list((isolated_cache / "compiled").glob("wheels-*.json"))

    def no_spreadsheets(*args, **kwargs):
        raise AssertionError("the spreadsheets were read again")

    monkeypatch.setattr(official, "compile_clusters", no_spreadsheets)
    second = load_official(reference_dir / "emotion_wheel")
    assert second.clusters == first.clusters and second.protocol == first.protocol


def test_corrupt_cache_is_rebuilt(reference_dir, isolated_cache):
    load_official(reference_dir / "emotion_wheel")
    for path in (isolated_cache / "compiled").glob("wheels-*.json"):
        path.write_text("{truncated")
    assert load_official(reference_dir / "emotion_wheel").clusters["happy"][0] == "happy"


def test_missing_file_is_named(reference_dir, tmp_path):
    folder = tmp_path / "wheels"
    shutil.copytree(reference_dir / "emotion_wheel", folder)
    (folder / "wheel3.xlsx").unlink()
    with pytest.raises(InputError, match=r"wheel3\.xlsx is missing") as info:
        load_official(folder)
    assert "fetch-wheels" in str(info.value)


def test_broken_spreadsheet_is_named(reference_dir, tmp_path):
    folder = tmp_path / "wheels"
    shutil.copytree(reference_dir / "emotion_wheel", folder)
    (folder / "synonym.xlsx").write_bytes(b"not a spreadsheet")
    with pytest.raises(InputError, match="cannot read the spreadsheet") as info:
        load_official(folder, use_cache=False)
    assert "synonym.xlsx" in str(info.value)
