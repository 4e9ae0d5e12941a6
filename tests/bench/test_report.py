"""`affectgpt bench report`: the HTML report built from real scorer output on small inputs written here.

Expected numbers are computed in this file from the inputs it writes (not taken from the scorer), with the
built-in protocol so no official wheel files are needed. The lexicon words used are happy/angry/neutral
only: `neutral` maps to no family (its ground truth is skipped), happy and angry to different ones.
"""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from affectgpt.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# mer2023 (HIT): ground truth and two epochs of predictions.
MER_LABELS = {"s1": "happy", "s2": "angry", "s3": "happy", "s4": "neutral"}
MER_EPOCHS = {
    1: {"s1": "happy", "s2": "happy", "s3": "neutral", "s4": "angry"},
    2: {"s1": "happy", "s2": "angry, happy", "s3": "angry", "s4": "neutral"},
}
# cmumosi (WAF/ACC): sentiment scores and answers; "mixed" is unparseable (scored as 0 -> negative).
MOSI_LABELS = {"a": 1.5, "b": -2.0, "c": 0.0, "d": 0.8, "e": -0.4, "f": 2.2}
MOSI_EPOCHS = {
    1: {"a": "positive", "b": "positive", "c": "neutral", "d": "positive", "e": "mixed", "f": "positive"},
    2: {"a": "positive", "b": "positive", "c": "neutral", "d": "negative", "e": "positive", "f": "positive"},
}


def expected_hit(labels: dict[str, str], answers: dict[str, str]) -> float:
    """HIT with one-word labels: share of non-neutral ground truths found among the predicted words."""
    scored = [n for n, g in labels.items() if g != "neutral"]
    return sum(labels[n] in answers[n].split(", ") for n in scored) / len(scored)


def expected_waf_acc(labels: dict[str, float], answers: dict[str, str]) -> tuple[float, float]:
    """Support-weighted F1 over the two classes and accuracy; ground truth 0 dropped, `> 0` is positive."""
    pairs = [(g > 0, answers[n] == "positive") for n, g in labels.items() if g != 0]
    f1s = []
    for cls in (True, False):
        tp = sum(g == cls and p == cls for g, p in pairs)
        wrong = sum(g != p and cls in (g, p) for g, p in pairs)
        f1s.append((sum(g == cls for g, _ in pairs), 2 * tp / (2 * tp + wrong)))
    return sum(n * f for n, f in f1s) / len(pairs), sum(g == p for g, p in pairs) / len(pairs)


def x100(value: float) -> str:
    return f"{100 * value:.2f}"


def write_dataset(root: Path, key: str, labels: dict, epochs: dict, suffix: str, column: str) -> None:
    preds, gt = root / "preds" / key, root / "labels" / key
    preds.mkdir(parents=True)
    gt.mkdir(parents=True)
    (gt / "test_labels.csv").write_text("name,label\n" + "".join(f"{n},{v}\n" for n, v in labels.items()))
    for epoch, answers in epochs.items():
        lines = "".join(f'{n},"{a}"\n' for n, a in answers.items())
        name = f"checkpoint_{epoch:06d}_loss_0.{9 - epoch}{suffix}.csv"
        (preds / name).write_text(f"name,{column}\n{lines}")


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """JSON results from the real scorer: mer2023 alone, mer2023 with a fixed epoch, and a 2-dataset suite."""
    root = tmp_path_factory.mktemp("scored")
    write_dataset(root, "mer2023", MER_LABELS, MER_EPOCHS, "-openset", "openset")
    write_dataset(root, "cmumosi", MOSI_LABELS, MOSI_EPOCHS, "-openset-sentiment", "sentiment")
    out = {"mer": root / "mer.json", "mer_fixed": root / "mer-epoch1.json", "suite": root / "suite.json"}
    common = ["--protocol", "builtin", "--format", "json"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AFFECTGPT_CACHE_DIR", str(root / "cache"))
        mer = ["bench", "score", "--dataset", "mer2023", "--predictions", str(root / "preds" / "mer2023"),
               "--labels", str(root / "labels" / "mer2023"), *common]
        assert main([*mer, "--output", str(out["mer"])]) == 0
        assert main([*mer, "--epoch", "1", "--output", str(out["mer_fixed"])]) == 0
        assert main(["bench", "suite", "--predictions-root", str(root / "preds"), "--labels-root",
                     str(root / "labels"), *common, "--output", str(out["suite"])]) == 0
    return out


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFFECTGPT_CACHE_DIR", str(tmp_path / "cache"))


class Tables(HTMLParser):
    """Every <table> of a page as rows of cell texts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []
        elif tag == "br" and self.cell is not None:
            self.cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def score_table(page: str) -> list[list[str]]:
    return next(t for t in Tables(page).tables if t[0][0] == "dataset" and t[0][1] != "result set")


def report(tmp_path: Path, *args: str) -> tuple[int, Path]:
    output = tmp_path / "out" / "report.html"
    return main(["bench", "report", *args, "--output", str(output)]), output


def test_single_result_shows_oracle_best_and_figures(scored: dict[str, Path], tmp_path: Path) -> None:
    rc, output = report(tmp_path, str(scored["mer"]))
    assert rc == 0
    page = output.read_text(encoding="utf-8")
    best = max(MER_EPOCHS, key=lambda e: expected_hit(MER_LABELS, MER_EPOCHS[e]))
    assert best == 2
    table = score_table(page)
    assert table[0] == ["dataset", "mer"]
    row = next(r for r in table if r[0].startswith("MER2023"))
    hit = expected_hit(MER_LABELS, MER_EPOCHS[2])
    assert x100(hit) == "66.67"  # 2 of the 3 non-neutral samples
    assert row[1] == f"{x100(hit)} epoch 2 (oracle)"
    assert "not a fair model selection" in page  # the oracle note
    assert "BUILT-IN protocol" in page and "class='warn'" in page
    assert "generated by affectgpt" in page
    figures = output.parent / "report_figures"
    pngs = sorted(p.name for p in figures.iterdir())
    assert pngs == ["mer2023_bar.png", "mer2023_epochs.png"]
    image = pytest.importorskip("matplotlib.image")
    for name in pngs:
        data = (figures / name).read_bytes()
        assert data.startswith(PNG_MAGIC)
        pixels = image.imread(figures / name)
        assert pixels.shape[0] > 0 and pixels.shape[1] > 0
        assert f"data:image/png;base64,{base64.b64encode(data).decode()}" in page
    assert sorted(p.name for p in output.parent.iterdir()) == ["report.html", "report_figures"]


def test_two_result_sets_give_two_columns(scored: dict[str, Path], tmp_path: Path) -> None:
    rc, output = report(tmp_path, str(scored["suite"]), str(scored["mer_fixed"]), "--name", "suite A",
                        "--name", "fixed B")
    assert rc == 0
    page = output.read_text(encoding="utf-8")
    table = score_table(page)
    assert table[0] == ["dataset", "suite A", "fixed B"]
    rows = {r[0]: r[1:] for r in table[1:]}
    assert [k.split(" (")[0] for k in rows] == ["MER2023", "MER2024", "MELD", "IEMOCAP", "CMU-MOSI",
                                                 "CMU-MOSEI", "CH-SIMS", "CH-SIMS v2", "OV-MERD+", "Mean"]
    hit = expected_hit(MER_LABELS, MER_EPOCHS[2])
    assert rows["MER2023 (HIT)"][0].startswith(f"{x100(hit)} epoch 2 (oracle)")
    assert "partial ground truth: 4 of 411 test samples" in rows["MER2023 (HIT)"][0]
    assert rows["MER2023 (HIT)"][1] == f"{x100(expected_hit(MER_LABELS, MER_EPOCHS[1]))} epoch 1 (fixed)"
    waf, acc = max(expected_waf_acc(MOSI_LABELS, MOSI_EPOCHS[e]) for e in MOSI_EPOCHS)
    assert (x100(waf), x100(acc)) == ("78.10", "80.00")
    assert rows["CMU-MOSI (WAF)"][0].startswith(f"{x100(waf)} epoch 1 (oracle) ACC {x100(acc)}")
    assert rows["CMU-MOSI (WAF)"][1] == "n/a not in this result set"
    assert rows["MELD (HIT)"][0] == "n/a no predictions"
    mean = next(v for k, v in rows.items() if k.startswith("Mean"))
    assert mean[0] == f"n/a partial mean of the 2 of 9 datasets present: {x100((hit + waf) / 2)}"
    assert mean[1] == "- not a suite"
    figures = sorted(p.name for p in (output.parent / "report_figures").iterdir())
    assert figures == ["cmumosi_bar.png", "cmumosi_epochs.png", "mer2023_bar.png", "mer2023_epochs.png"]
    diagnostics = next(t for t in Tables(page).tables if t[0][:2] == ["dataset", "result set"])
    mosi = next(r for r in diagnostics if r[:2] == ["CMU-MOSI", "suite A"])
    assert mosi[6].startswith("1 unparseable") and mosi[7] == "mixed (1)"
    mer = next(r for r in diagnostics if r[:2] == ["MER2023", "fixed B"])
    words = sum(len(a.split(", ")) for a in MER_EPOCHS[1].values())
    assert mer[2] == "1" and f"0 of {words} words unknown" in mer[6]


def test_protocol_mismatch_warns_and_text_is_escaped(scored: dict[str, Path], tmp_path: Path) -> None:
    data = json.loads(scored["mer"].read_text())
    data["protocol"], data["protocol_note"] = "official-2025", "<script>alert(1)</script>"
    other = tmp_path / "official.json"
    other.write_text(json.dumps(data))
    rc, output = report(tmp_path, str(scored["mer"]), str(other), "--name", "<b>mine</b>", "--name", "theirs")
    assert rc == 0
    page = output.read_text(encoding="utf-8")
    assert "different protocols (builtin-1, official-2025)" in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>mine</b>" not in page and "&lt;b&gt;mine&lt;/b&gt;" in page


def test_rerun_replaces_the_report_and_its_figures(scored: dict[str, Path], tmp_path: Path) -> None:
    assert report(tmp_path, str(scored["suite"]))[0] == 0
    rc, output = report(tmp_path, str(scored["mer"]))
    assert rc == 0
    assert sorted(p.name for p in output.parent.iterdir()) == ["report.html", "report_figures"]
    assert sorted(p.name for p in (output.parent / "report_figures").iterdir()) == [
        "mer2023_bar.png", "mer2023_epochs.png"]


def _bad_inputs(tmp_path: Path, mer: Path) -> dict[str, tuple[list[str], str]]:
    good = json.loads(mer.read_text())

    def write(name: str, content: object) -> str:
        path = tmp_path / name
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        return str(path)

    return {
        "missing file": ([str(tmp_path / "nope.json")], "nope.json: result file not found"),
        "not json": ([write("a.json", "{not json")], "a.json: not JSON"),
        "a list": ([write("b.json", [1, 2])], "b.json: schema_version"),
        "no schema": ([write("c.json", {"dataset": "mer2023"})], "c.json: schema_version"),
        "new schema": ([write("d.json", {**good, "schema_version": 99})], "d.json: schema_version: "),
        "no epochs": ([write("e.json", {k: v for k, v in good.items() if k != "epochs"})], "e.json: epochs"),
        "bad dataset": ([write("f.json", {**good, "dataset": "mer2099"})], "f.json: dataset: unknown"),
        "bad metric": ([write("g.json", {**good, "best": {"metrics": {}}})], "g.json: best.metrics.hit"),
        "bad suite": ([write("h.json", {"schema_version": 1, "protocol": "x", "selection": "oracle",
                                        "results": {"mer2023": {"dataset": "mer2023"}}, "row": [],
                                        "mean": None, "mean_present": {}})],
                      "h.json: results.mer2023.protocol"),
        "name count": ([str(mer), "--name", "a", "--name", "b"], "--name: 2 --name labels for 1"),
        "same names": ([str(mer), str(mer), "--name", "a", "--name", "a"], "--name: the labels"),
    }


BAD_CASES = ["missing file", "not json", "a list", "no schema", "new schema", "no epochs", "bad dataset",
             "bad metric", "bad suite", "name count", "same names"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_exits_2_and_writes_nothing(case: str, scored: dict[str, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    args, message = _bad_inputs(tmp_path, scored["mer"])[case]
    rc, output = report(tmp_path, *args)
    assert rc == 2
    error = capsys.readouterr().err
    assert message in error and "Fix:" in error
    assert not output.parent.exists()


def test_failure_while_rendering_leaves_no_partial_output(scored: dict[str, Path], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from affectgpt.bench.report import html

    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(html, "render_page", broken)
    monkeypatch.setenv("AFFECTGPT_DEBUG", "1")  # the bug itself, not the CLI's one-line report of it
    with pytest.raises(RuntimeError, match="boom"):
        report(tmp_path, str(scored["mer"]))
    assert list((tmp_path / "out").iterdir()) == []


def test_without_matplotlib_it_names_the_extra(scored: dict[str, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from affectgpt.bench.report import html
    from affectgpt.errors import MissingExtra

    def missing(module: str, *, extra: str) -> None:
        raise MissingExtra(module.split(".")[0], extra)

    monkeypatch.setattr(html, "require", missing)
    rc, output = report(tmp_path, str(scored["mer"]))
    assert rc == 2
    assert "affectgpt[report]" in capsys.readouterr().err
    assert not output.parent.exists()
