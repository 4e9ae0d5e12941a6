"""Training the text heads: labelled transcript rows with their splits, seeded logistic regression, head sets.

Data (../shared/reference): transcripts/{mer2023,iemocap,cmumosi,sims}.csv (name, chinese, english) joined with
the splits inside labels/*/label*.npz, read with the allow-list unpickler (affectgpt.io.npy):

- MER2023 label-6way.npz: train_corpus -> "train" (6 emotions in 'emo', a valence in 'val'); test1/2/3 -> "test".
  The 332 public OV-MERD+ names (labels/ovmerdplus/test_labels.csv) lie in train_corpus: they get split "ov"
  and never enter training.
- IEMOCAP label_4way.npz whole_corpus: sessions 1-4 -> "train" (session 4 doubles as dev), session 5 -> "test".
- CMU-MOSI / CH-SIMS label.npz: train_corpus -> "train", val_corpus -> "dev", test_corpus -> "test".

A "dev" fold of MER2023 train (a fixed fifth, by a hash of the name) is held out to choose the regularisation
and the label-rule thresholds; the shipped heads are refit on train + dev. Both the Chinese and the English text
of a row are training samples (two views, same label); at inference the probabilities of both are averaged.
scikit-learn is a training-only dependency, imported inside the functions that fit.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from affectgpt.perception.base import EMOTIONS
from affectgpt.perception.text_heads import Head

SENTIMENT_CLASSES: tuple[str, ...] = ("negative", "positive")
CORPORA = ("mer2023", "iemocap", "cmumosi", "sims")
_LABEL_FILES = {"mer2023": "mer2023/label-6way.npz", "iemocap": "iemocapfour/label_4way.npz",
                "cmumosi": "cmumosi/label.npz", "sims": "sims/label.npz"}
_IEMOCAP = {0: "happy", 1: "sad", 2: "neutral", 3: "angry"}  # label_4way 'emo' codes, anger -> MER's 'angry'
VIEWS = ("chinese", "english")
C = 4.0  # the emotion heads' logistic-regression C; dev (MER2023 dev fold, IEMOCAP S4) chose 4 over 1, 8, 16
BALANCED = False  # class_weight=None beat "balanced" on the dev top-class accuracy and WAF
SENTIMENT_C = 1.0  # the sentiment heads' C: dev (MOSI / SIMS val, cross-corpus) put 1 a little above 2 and 4
# Per-sample weight of a corpus in training. IEMOCAP (US acted dialogue) at full weight cost the MER2023 dev fold
# 5 points of HIT; at 0.1 the dev fold scores as without it while IEMOCAP session 4 gains 5 points (dev only).
CORPUS_WEIGHTS = {"iemocap": 0.1}
DEV_FOLDS = 5  # MER2023 train: names whose hash is 0 mod DEV_FOLDS form the dev fold


@dataclass(frozen=True)
class Row:
    """One labelled transcript row."""

    corpus: str
    name: str
    split: str  # "train", "dev", "test" or "ov" (the 332 OV-MERD+ names: never trained on)
    chinese: str
    english: str
    emotion: str | None  # one of EMOTIONS, or None (MOSI, SIMS)
    score: float | None  # sentiment score (MER2023 valence, MOSI, SIMS), or None (IEMOCAP)


def _dev_fold(name: str) -> bool:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % DEV_FOLDS == 0


def read_transcripts(path: Path) -> dict[str, tuple[str, str]]:
    """name -> (chinese, english) of one transcript CSV."""
    with path.open(encoding="utf-8", newline="") as handle:
        return {r["name"]: ((r.get("chinese") or "").strip(), (r.get("english") or "").strip())
                for r in csv.DictReader(handle)}


def ov_names(reference: Path) -> set[str]:
    """The 332 public OV-MERD+ names (all inside MER2023 train)."""
    path = reference / "labels" / "ovmerdplus" / "test_labels.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return {r["name"] for r in csv.DictReader(handle)}


def load_rows(reference: str | Path) -> list[Row]:
    """Every labelled row of the four corpora, with its split, in a fixed order (corpus, then name)."""
    from affectgpt.io.npy import read_npz

    reference = Path(reference)
    held_ov = ov_names(reference)
    rows: list[Row] = []
    for corpus in CORPORA:
        texts = read_transcripts(reference / "transcripts" / f"{corpus}.csv")
        arrays = read_npz(reference / "labels" / _LABEL_FILES[corpus])
        for split_key, corpus_split in arrays.items():
            for name, entry in corpus_split.items():
                name = str(name)
                if name not in texts:
                    continue
                split, emotion, score = _label(corpus, split_key, name, entry, held_ov)
                rows.append(Row(corpus, name, split, *texts[name], emotion, score))
    rows.sort(key=lambda r: (CORPORA.index(r.corpus), r.name))
    return rows


def _label(corpus: str, split_key: str, name: str, entry: dict, held_ov: set[str]):
    if corpus == "mer2023":
        split = "test" if split_key != "train_corpus" else "ov" if name in held_ov else \
            "dev" if _dev_fold(name) else "train"
        return split, str(entry["emo"]), float(entry["val"])
    if corpus == "iemocap":
        return ("test" if name[4] == "5" else "train"), _IEMOCAP[int(entry["emo"])], None
    split = {"train_corpus": "train", "val_corpus": "dev", "test_corpus": "test"}[split_key]
    return split, None, float(entry["val"])


def row_vectors(rows: Sequence[Row], reference: str | Path, encoder=None) -> dict[str, np.ndarray]:
    """view -> [len(rows), dim] vectors (NaN rows where that view's text is empty).

    Each corpus file's whole column is embedded at once through the cache (text_encoder.embed_cached), so that
    every subset of rows reuses the same cached vectors.
    """
    from affectgpt.perception.text_encoder import embed_cached

    reference = Path(reference)
    out: dict[str, np.ndarray] = {}
    for view in VIEWS:
        column: np.ndarray | None = None
        for corpus in sorted({r.corpus for r in rows}):
            texts = read_transcripts(reference / "transcripts" / f"{corpus}.csv")
            names = list(texts)
            vectors = embed_cached(encoder, [texts[n][VIEWS.index(view)] for n in names])
            index = {n: i for i, n in enumerate(names)}
            if column is None:
                column = np.full((len(rows), vectors.shape[1]), np.nan, dtype=np.float32)
            for i, r in enumerate(rows):
                if r.corpus == corpus and getattr(r, view):
                    column[i] = vectors[index[r.name]]
        out[view] = column if column is not None else np.zeros((0, 0), dtype=np.float32)
    return out


def sentiment_target(score: float) -> str | None:
    """The scorer's convention (bench/metrics.py sentiment_waf_acc): score > 0 positive, < 0 negative, 0 dropped."""
    if score > 0:
        return "positive"
    if score < 0:
        return "negative"
    return None


def training_set(rows: Sequence[Row], vectors: dict[str, np.ndarray], task: str,
                 keep: Iterable[bool]) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(X, y, sample weights) of the kept rows, one sample per non-empty view; `task`: "emotion"/"sentiment"."""
    xs, ys, ws = [], [], []
    for i, (row, kept) in enumerate(zip(rows, keep, strict=True)):
        if not kept:
            continue
        label = row.emotion if task == "emotion" else (
            None if row.score is None else sentiment_target(row.score))
        if label is None:
            continue
        for view in VIEWS:
            if not np.isnan(vectors[view][i, 0]):
                xs.append(vectors[view][i])
                ys.append(label)
                ws.append(CORPUS_WEIGHTS.get(row.corpus, 1.0))
    return (np.stack(xs) if xs else np.zeros((0, 0), np.float32)), ys, np.asarray(ws)


def fit_head(x: np.ndarray, y: Sequence[str], classes: Sequence[str], *, c: float = C, seed: int = 0,
             balanced: bool = BALANCED, weights: np.ndarray | None = None) -> Head:
    """A multinomial logistic regression (lbfgs, deterministic given the data and seed) as a Head."""
    from sklearn.linear_model import LogisticRegression

    classes = tuple(classes)
    model = LogisticRegression(C=c, max_iter=2000, random_state=seed,
                               class_weight="balanced" if balanced else None)
    model.fit(np.asarray(x, dtype=np.float64), np.asarray(y), sample_weight=weights)
    learned = [str(k) for k in model.classes_]
    coef, intercept = model.coef_, model.intercept_
    if len(learned) == 2:  # sklearn keeps one row for two classes: sigmoid(z) = softmax([-z/2, z/2])
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    weight = np.zeros((len(classes), x.shape[1]), dtype=np.float32)
    bias = np.full(len(classes), -30.0, dtype=np.float32)  # a class absent from the data is never predicted
    for j, k in enumerate(learned):
        weight[classes.index(k)] = coef[j]
        bias[classes.index(k)] = intercept[j]
    return Head(classes, weight, bias)


def head_proba(head: Head, rows_vectors: dict[str, np.ndarray]) -> np.ndarray:
    """[n, classes] probabilities, the mean over the views each row has (uniform where it has none)."""
    total, count = None, None
    for view in VIEWS:
        v = rows_vectors[view]
        ok = ~np.isnan(v[:, 0])
        p = np.zeros((v.shape[0], len(head.classes)))
        if ok.any():
            p[ok] = head.proba(v[ok])
        total = p if total is None else total + p
        count = ok.astype(float) if count is None else count + ok
    assert total is not None and count is not None
    uniform = np.full_like(total, 1.0 / len(head.classes))
    return np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None], uniform)


def data_hash(rows: Sequence[Row], keep: Iterable[bool]) -> str:
    """sha256 of the kept rows' corpus, name, texts and labels (what a head was trained on)."""
    digest = hashlib.sha256()
    for row, kept in zip(rows, keep, strict=True):
        if kept:
            digest.update(repr((row.corpus, row.name, row.chinese, row.english, row.emotion,
                                row.score)).encode())
    return digest.hexdigest()


def _mer(r: Row, dev: bool = True) -> bool:
    return r.corpus == "mer2023" and (r.split == "train" or (dev and r.split == "dev"))


def _train(r: Row, corpus: str) -> bool:
    return r.corpus == corpus and r.split == "train"


RECIPES: dict[str, tuple[str, Callable[[Row], bool]]] = {
    # shipped heads (and the benchmark's heads for mer2023 / ovmerdplus: they never see the 332 OV names)
    "emotion": ("emotion", lambda r: _mer(r) or _train(r, "iemocap")),
    "sentiment": ("sentiment", lambda r: _mer(r) or _train(r, "cmumosi") or _train(r, "sims")),
    # cross-corpus heads of the benchmark: none sees the train split of the set it scores
    "emotion-no-iemocap": ("emotion", lambda r: _mer(r)),
    "sentiment-no-cmumosi": ("sentiment", lambda r: _mer(r) or _train(r, "sims")),
    "sentiment-no-sims": ("sentiment", lambda r: _mer(r) or _train(r, "cmumosi")),
    # dev head: MER2023 train without its dev fold, scored on the dev fold and on IEMOCAP session 4 (calibration)
    "emotion-dev": ("emotion", lambda r: _mer(r, dev=False)),
}
"""recipe -> (task, which rows it trains on). No recipe keeps a row of split "test" or "ov"."""


def recipe_mask(rows: Sequence[Row], recipe: str) -> list[bool]:
    """Which rows `recipe` trains on (never a "test" or "ov" row, whatever the predicate says)."""
    _, keep = RECIPES[recipe]
    return [r.split not in ("test", "ov") and keep(r) for r in rows]


def fit_recipe(rows: Sequence[Row], vectors: dict[str, np.ndarray], recipe: str, *, c: float | None = None,
               seed: int = 0, balanced: bool = BALANCED) -> tuple[Head, dict[str, object]]:
    """The head of `recipe` and what it was trained on (rows per corpus, samples, data hash, C, seed)."""
    task, _ = RECIPES[recipe]
    keep = recipe_mask(rows, recipe)
    x, y, weights = training_set(rows, vectors, task, keep)
    classes = EMOTIONS if task == "emotion" else SENTIMENT_CLASSES
    c = c if c is not None else C if task == "emotion" else SENTIMENT_C
    head = fit_head(x, y, classes, c=c, seed=seed, balanced=balanced, weights=weights)
    per_corpus: dict[str, int] = {}
    for row, kept in zip(rows, keep, strict=True):
        if kept:
            per_corpus[row.corpus] = per_corpus.get(row.corpus, 0) + 1
    info = {"recipe": recipe, "task": task, "rows": per_corpus, "samples": len(y), "C": c, "seed": seed,
            "corpus_weights": {k: v for k, v in CORPUS_WEIGHTS.items() if k in per_corpus},
            "class_weight": "balanced" if balanced else "none", "data_sha256": data_hash(rows, keep)}
    return head, info
