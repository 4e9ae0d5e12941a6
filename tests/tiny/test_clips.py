"""The synthetic clips of the tiny recipe: targets that follow from what each clip shows and plays."""

from __future__ import annotations

import pytest

pytest.importorskip("av")

from affectgpt.data.manifests import read_manifest
from affectgpt.tiny.clips import make_synthetic_dataset


def test_synthetic_answers_follow_the_inputs(tmp_path):
    """Identical inputs (subtitle, colour, voice) never have different answers, and the voice alone decides the
    secondary label: the same subtitle comes with both voices."""
    samples = read_manifest(make_synthetic_dataset(tmp_path, 12, seed=3))
    seen: dict[tuple[str, str], tuple[str, ...]] = {}
    for sample in samples:
        cue = sample.description.split(" The subtitle")[0]  # colour and voice, as the clip shows them
        assert seen.setdefault((cue, sample.subtitle), sample.labels) == sample.labels
        assert (len(sample.labels) == 2) == (" middle tone" not in cue)
    by_subtitle = {s.subtitle for s in samples}
    assert len(by_subtitle) == 6 and len(seen) == 11  # neutral: both its voices are middle tones
