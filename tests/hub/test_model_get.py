"""`affectgpt model get` against a fake hub on 127.0.0.1 (tests/support/fake_hub.py): download, choose the epoch,
resume a cut transfer, pin revisions, refuse damaged files, work offline afterwards, fail clearly without network."""

from __future__ import annotations

import io
import json
import socket

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from fake_hub import FakeHub  # noqa: E402
from tiny_models import FIDELITY  # noqa: E402

from affectgpt.cli import main  # noqa: E402
from affectgpt.model.known import KNOWN, installed_path  # noqa: E402

NAME = "affectgpt-mercaptionplus"
KNOWN_ENTRY = KNOWN[NAME]
RUN = KNOWN_ENTRY.run
E10 = f"{RUN}/checkpoint_000010_loss_0.900.pth"
E30 = f"{RUN}/checkpoint_000030_loss_0.500.pth"
MODELS = FIDELITY / "models"
CKPT = FIDELITY / "fixtures" / "released" / "ckpt.pth"
MARKED = "affectgpt_proj.bias"  # the epoch-30 file differs from the epoch-10 one here


def _folder(name: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((MODELS / name).iterdir())}


@pytest.fixture(scope="module")
def checkpoints() -> dict[str, bytes]:
    if not CKPT.is_file():
        pytest.skip(f"fidelity fixtures not found under {FIDELITY}")
    state = torch.load(CKPT, map_location="cpu", weights_only=True)
    later = {"model": {k: v.clone() for k, v in state["model"].items()}}
    later["model"][MARKED] += 1.0
    buffer = io.BytesIO()
    torch.save(later, buffer)
    return {E10: CKPT.read_bytes(), E30: buffer.getvalue()}


@pytest.fixture
def hub(checkpoints, tmp_path, monkeypatch):
    from huggingface_hub import constants

    fake = FakeHub()
    fake.add_commit(KNOWN_ENTRY.llm, _folder("tiny-qwen2"))
    fake.add_commit(KNOWN_ENTRY.visual_encoder, _folder("tiny-clip"))
    fake.add_commit(KNOWN_ENTRY.audio_encoder, _folder("tiny-hubert"))
    readme = {"README.md": b"# AffectGPT\n"}
    fake.first = fake.add_commit(KNOWN_ENTRY.repo, {**readme, E10: checkpoints[E10]})
    fake.main = fake.add_commit(KNOWN_ENTRY.repo, {**readme, E10: checkpoints[E10], E30: checkpoints[E30],
                                                   "other-run/checkpoint_000090_loss_0.100.pth": b"not this run"})
    fake.start()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # read once at import; the suite turns it on
    monkeypatch.setenv("HF_ENDPOINT", fake.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("AFFECTGPT_CACHE_DIR", str(tmp_path / "affectgpt-cache"))
    yield fake
    fake.stop()


def _error(err: str) -> str:
    """The one error line (progress lines may come before it), with no traceback."""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def _get(tmp_path, *extra: str) -> int:
    return main(["model", "get", NAME, "--dir", str(tmp_path / "model"), *extra])


def test_get_downloads_the_highest_epoch_imports_it_and_loads_offline(hub, tmp_path, capsys):
    from affectgpt.infer.describe import load_model

    assert _get(tmp_path) == 0
    captured = capsys.readouterr()
    folder = tmp_path / "model"
    assert captured.out.strip() == str(folder)
    assert "found 2 checkpoints" in captured.err and "checkpoint_000030_loss_0.500.pth (epoch 30)" in captured.err
    assert "inferred lora_r=4" in captured.err  # the tiny run's LoRA rank, read off its tensors
    assert installed_path(NAME, folder) == folder
    record = json.loads((folder / "download.json").read_text())
    assert record["epoch"] == 30 and record["checkpoint"] == E30
    assert record["revisions"]["checkpoint"] == hub.main
    base = json.loads((folder / "config.json").read_text())["base"]
    assert base["source"] == f"{KNOWN_ENTRY.repo}/{E30}" and base["source_revision"] == hub.main
    assert base["llm"].endswith(hub.repos[KNOWN_ENTRY.llm][-1].sha)  # the snapshot folder of that commit
    hub.stop()  # offline from here on: the installed checkpoint needs nothing from the network
    model, _ = load_model(folder)
    expected = torch.load(io.BytesIO(hub.repos[KNOWN_ENTRY.repo][-1].files[E30]), weights_only=True)["model"]
    assert torch.equal(model.video_pool.proj.bias, expected[MARKED])


def test_epoch_picks_another_checkpoint_and_an_absent_one_is_refused(hub, tmp_path, capsys):
    assert _get(tmp_path, "--epoch", "10") == 0
    assert json.loads((tmp_path / "model" / "download.json").read_text())["epoch"] == 10
    capsys.readouterr()
    assert main(["model", "get", NAME, "--dir", str(tmp_path / "other"), "--epoch", "7"]) == 2
    err = _error(capsys.readouterr().err)
    assert "--epoch" in err and "choose one of 10, 30" in err
    assert not (tmp_path / "other").exists()


def test_a_transfer_cut_midway_resumes(hub, tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    # huggingface_hub keeps what it received in whole chunks (10 MB); our files are small, so are its chunks here
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    hub.cut_once.add(E30)
    assert _get(tmp_path) == 0
    gets = [r for r in hub.requests if r[0] == "GET" and r[1].endswith(E30)]
    assert len(gets) == 2 and gets[0][2] is None and gets[1][2].startswith("bytes=")
    resumed_at = int(gets[1][2][len("bytes="):-1])  # the second request asks only for the rest
    assert 0 < resumed_at <= len(hub.repos[KNOWN_ENTRY.repo][-1].files[E30]) // 2
    assert installed_path(NAME, tmp_path / "model") is not None


def test_revision_pins_the_commit_and_the_resolved_sha_is_recorded(hub, tmp_path, capsys):
    assert _get(tmp_path, "--revision", hub.first) == 0
    record = json.loads((tmp_path / "model" / "download.json").read_text())
    assert record["revisions"]["checkpoint"] == hub.first and record["epoch"] == 10  # that commit had epoch 10 only
    assert main(["model", "get", NAME, "--dir", str(tmp_path / "main"), "--revision", "main"]) == 0
    base = json.loads((tmp_path / "main" / "config.json").read_text())["base"]
    assert base["source_revision"] == hub.main  # "main" recorded as the commit it resolved to
    capsys.readouterr()
    assert main(["model", "get", NAME, "--dir", str(tmp_path / "none"), "--revision", "nope"]) == 2
    assert "has no revision 'nope'" in _error(capsys.readouterr().err)


@pytest.mark.parametrize("damage", ["bytes", "size"])
def test_a_damaged_download_is_refused_and_not_imported(hub, tmp_path, capsys, damage):
    true = hub.repos[KNOWN_ENTRY.repo][-1].files[E30]
    hub.corrupt[E30] = bytes(b ^ 0xFF for b in true) if damage == "bytes" else true[:-100]
    assert _get(tmp_path) == 2
    err = _error(capsys.readouterr().err)
    assert ("sha256" in err) if damage == "bytes" else ("wrong size" in err)
    assert not (tmp_path / "model").exists()
    del hub.corrupt[E30]  # the damaged copy is not kept: the next run downloads it afresh
    assert _get(tmp_path) == 0


def test_no_network_is_one_clear_error(hub, tmp_path, monkeypatch, capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")  # nothing listens there
    assert _get(tmp_path) == 2
    err = _error(capsys.readouterr().err)
    assert "cannot reach the hub" in err
    assert not (tmp_path / "model").exists()


def test_offline_mode_is_named(hub, tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert _get(tmp_path) == 2
    assert "HF_HUB_OFFLINE" in _error(capsys.readouterr().err)


def test_ls_shows_the_known_weights_and_where_they_are_installed(hub, tmp_path, capsys):
    assert main(["model", "ls"]) == 0
    out = capsys.readouterr().out
    assert f"{NAME} " in out and "not installed" in out
    assert KNOWN_ENTRY.repo in out and KNOWN_ENTRY.llm in out and RUN in out
    assert main(["model", "get", NAME]) == 0  # the default place: the per-user cache
    capsys.readouterr()
    assert main(["model", "ls"]) == 0
    out = capsys.readouterr().out
    assert f"installed at {tmp_path / 'affectgpt-cache' / 'models' / NAME}" in out


def test_unknown_name_has_a_hint(capsys):
    assert main(["model", "get", "affectgpt-mercaptionplu"]) == 2
    assert "did you mean 'affectgpt-mercaptionplus'" in capsys.readouterr().err
