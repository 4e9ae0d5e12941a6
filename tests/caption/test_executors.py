"""The executors give the same records: inline (one worker), a local process pool of 2, Ray on 2 local CPUs."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
from test_engine import FAKE_TABLE, NAMES, fake_config, make_clips

from affectgpt.caption.engine import run_caption
from affectgpt.caption.executors import InlineExecutor, LocalExecutor, WorkerSpec, make_executor
from affectgpt.caption.store import comparable, read_records
from affectgpt.errors import MissingExtra


def _records(out: Path) -> list[str]:
    records = read_records(out)
    assert len({r["name"] for r in records}) == len(records)
    return sorted(map(comparable, records))


def _run(tmp_path: Path, name: str, executor: str, workers: int) -> list[str]:
    clips = make_clips(tmp_path / "clips", NAMES)
    config = fake_config(merge={"note": "pooled"})
    config = type(config)(executor=executor, workers=workers, stages=config.stages, source=config.source)
    summary = run_caption(clips, config, tmp_path / name, table=FAKE_TABLE)
    assert summary.clips == len(NAMES)
    return _records(tmp_path / name)


def test_local_is_a_process_pool_even_of_one(tmp_path):
    pool = make_executor("local", WorkerSpec(FAKE_TABLE, {}, str(tmp_path)), 1)
    try:
        assert isinstance(pool, LocalExecutor) and pool.workers == 1
    finally:
        pool.close()


def test_a_local_pool_of_two_gives_the_records_of_one_and_of_the_calling_process(tmp_path):
    clips = make_clips(tmp_path / "clips", NAMES)
    config = fake_config(merge={"note": "pooled"})
    inline = InlineExecutor(WorkerSpec(FAKE_TABLE, {s: config.section(s) for s in config.stages},
                                       str((tmp_path / "inline").resolve())))
    run_caption(clips, config, tmp_path / "inline", table=FAKE_TABLE, executor=inline)
    assert _run(tmp_path, "pool", "local", 2) == _run(tmp_path, "one", "local", 1) == _records(tmp_path / "inline")


def test_ray_missing_names_its_extra(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    monkeypatch.setattr("importlib.import_module", lambda name, *a: no_ray(name))
    with pytest.raises(MissingExtra, match=r"caption-ray"):
        make_executor("ray", WorkerSpec(FAKE_TABLE, {}, str(tmp_path)), 2)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (pip install 'affectgpt[caption-ray]')")
def test_ray_on_two_local_cpus_gives_the_local_records(tmp_path, monkeypatch):
    here = str(Path(__file__).resolve().parent)  # Ray's worker processes import the fake stages from here
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    local = _run(tmp_path, "local", "local", 2)
    assert _run(tmp_path, "ray", "ray", 2) == local


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                    reason="ray is not installed (pip install 'affectgpt[caption-ray]')")
def test_ray_gives_the_local_records_with_the_real_offline_stages(tmp_path, square_clip, tone_clip, reference_dir):
    pytest.importorskip("affectgpt.caption.stages")
    import shutil

    from affectgpt.caption.config import load_caption_config

    clips = []
    for name, source in (("gen_square", square_clip), ("gen_tone", tone_clip),
                         ("sample_00000000", reference_dir / "media" / "sample_00000000.mp4")):
        target = tmp_path / "clips" / f"{name}{source.suffix}"
        target.parent.mkdir(exist_ok=True)
        shutil.copy(source, target)
        clips.append((name, target))
    runs = {}
    for executor in ("local", "ray"):
        config = load_caption_config(None, [f"executor={executor}", "workers=2"])
        summary = run_caption(clips, config, tmp_path / executor)
        assert summary.clips == 3 and summary.executor == executor
        runs[executor] = _records(tmp_path / executor)
    assert runs["ray"] == runs["local"]
