"""Face tracks: the shipped detector on a real face photo, the main-track rules, smoothing, crops, fallback."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")

from affectgpt.errors import InputError  # noqa: E402
from affectgpt.media.faces import DETECTORS, FaceTrack, HaarFaceDetector, track_faces  # noqa: E402

# Facts about skimage.data.astronaut() (512 x 512), read off the image by eye at 3x zoom with a 20 px grid:
# the eye centres, the mouth centre and the cheek-to-cheek width of the face, in its pixels.
EYES = ((202.0, 102.0), (247.0, 103.0))
MOUTH = (225.0, 147.0)
MID_FACE = (225.0, 125.0)  # halfway between the eyes' midpoint and the mouth
FACE_WIDTH = 90.0
# The square of the photo pasted into test frames: it holds the whole head and a little background.
REGION = (95, 15, 260)  # x0, y0, side


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


def background(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A textured, face-free background: blurred noise."""
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3)).astype(np.uint8)
    return cv2.GaussianBlur(noise, (31, 31), 10)


def head(astronaut: np.ndarray, scale: float) -> np.ndarray:
    x0, y0, side = REGION
    patch = astronaut[y0:y0 + side, x0:x0 + side]
    new = round(side * scale)
    return cv2.resize(patch, (new, new), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def in_frame(point: tuple[float, float], offset: tuple[int, int], scale: float) -> tuple[float, float]:
    """Where a point of the photo lands in a frame where head(scale) was pasted at offset."""
    return (offset[0] + (point[0] - REGION[0]) * scale, offset[1] + (point[1] - REGION[1]) * scale)


def contains(box: np.ndarray, point: tuple[float, float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


# ---- the shipped detector on a real face ----

@pytest.mark.parametrize("brightness", [1.0, 0.3], ids=["as-is", "dark"])
def test_haar_finds_the_astronaut_face(astronaut: np.ndarray, brightness: float) -> None:
    image = (astronaut * brightness).astype(np.uint8)
    found = HaarFaceDetector()(image)
    assert len(found) == 1
    box = np.array(found[0][:4])
    assert all(contains(box, p) for p in (*EYES, MOUTH))
    assert FACE_WIDTH * 0.8 <= box[2] - box[0] <= FACE_WIDTH * 1.6


def test_no_face_in_a_real_photo_without_people() -> None:
    assert HaarFaceDetector()(skimage_data.coffee()) == []


@pytest.mark.parametrize("name", DETECTORS.names())
def test_every_detector_resolves_and_runs(name: str) -> None:
    detector = DETECTORS.get(name)()
    assert detector(np.full((120, 160, 3), 128, dtype=np.uint8)) == []


# ---- a moving main face, a smaller second face, frames without the main face ----

MAIN_SCALE, SECOND_SCALE = 1.8, 1.0
MISSING = (3, 7)  # frames where the main face is not in the picture


def main_offset(t: int) -> tuple[int, int]:
    return 10 + 28 * t, 10 + 8 * t  # steady motion down and to the right


SECOND_OFFSET = (960 - 260, 540 - 260)


@pytest.fixture(scope="module")
def two_faces(astronaut: np.ndarray) -> np.ndarray:
    """8 frames of 540 x 960: the main head (scale 1.8) moving, missing in MISSING; a second, smaller head
    (scale 1.0) still in the bottom-right corner in every frame."""
    main, second = head(astronaut, MAIN_SCALE), head(astronaut, SECOND_SCALE)
    frames = np.stack([background(540, 960)] * 8)
    for t in range(8):
        sx, sy = SECOND_OFFSET
        frames[t, sy:sy + second.shape[0], sx:sx + second.shape[1]] = second
        if t not in MISSING:
            mx, my = main_offset(t)
            frames[t, my:my + main.shape[0], mx:mx + main.shape[1]] = main
    return frames


def test_the_detector_sees_both_faces(two_faces: np.ndarray) -> None:
    """The premise of the next test: the second face is a real competitor, not invisible to the detector."""
    sides = sorted(b[2] - b[0] for b in HaarFaceDetector()(two_faces[0]))
    assert len(sides) == 2
    assert sides[0] < 0.75 * sides[1]


@pytest.fixture(scope="module")
def two_faces_track(two_faces: np.ndarray) -> FaceTrack:
    return track_faces(two_faces)


def test_track_follows_the_main_face(two_faces_track: FaceTrack) -> None:
    track = two_faces_track
    assert track.crops.shape == (8, 224, 224, 3) and track.crops.dtype == np.uint8
    assert track.boxes.shape == (8, 4) and track.boxes.dtype == np.float32
    assert not track.fallback
    assert track.detected.tolist() == [t not in MISSING for t in range(8)]
    for t, box in enumerate(track.boxes):
        # the missed frames too: interpolated (t=3) and held (t=7, at frame 6's place) along the steady motion
        where = main_offset(min(t, 6))
        assert all(contains(box, in_frame(p, where, MAIN_SCALE)) for p in (*EYES, MOUTH)), t
        face = np.array(in_frame(MID_FACE, where, MAIN_SCALE))
        assert np.hypot(*(centre(box) - face)) <= 0.2 * FACE_WIDTH * MAIN_SCALE, t
        second = np.array(in_frame(MID_FACE, SECOND_OFFSET, SECOND_SCALE))
        assert np.hypot(*(centre(box) - second)) > FACE_WIDTH, t
        assert box[2] - box[0] == box[3] - box[1]
        assert 1.2 <= (box[2] - box[0]) / (FACE_WIDTH * MAIN_SCALE) <= 2.6, t


def test_crops_are_the_boxes_of_the_frames(two_faces: np.ndarray, two_faces_track: FaceTrack) -> None:
    for t in (0, 5):
        x0, y0, x1, y1 = (int(v) for v in two_faces_track.boxes[t])
        assert x0 >= 0 and y0 >= 0  # inside the picture here: no padding
        region = two_faces[t, y0:y1, x0:x1]
        rows = (np.arange(224) * (y1 - y0) / 224 + (y1 - y0) / 448).astype(int)
        nearest = region[rows][:, rows]
        assert np.abs(two_faces_track.crops[t].astype(int) - nearest).mean() < 12


def test_size_sets_the_crop_side(two_faces: np.ndarray) -> None:
    assert track_faces(two_faces[:2], size=112).crops.shape == (2, 112, 112, 3)


# ---- border, margin, fallback ----

@pytest.fixture(scope="module")
def face_at_left_edge(astronaut: np.ndarray) -> np.ndarray:
    """4 frames of 480 x 640: the photo with its left 150 columns cut off, so the face is 30-120 px from the
    left edge."""
    frames = np.stack([background(480, 640, seed=1)] * 4)
    frames[:, :, :362] = astronaut[:480, 150:]
    return frames


def test_face_at_the_border_is_padded_not_shifted(face_at_left_edge: np.ndarray) -> None:
    track = track_faces(face_at_left_edge, margin=0.5)
    assert track.detected.all()
    face_x = MID_FACE[0] - 150
    for box, crop in zip(track.boxes, track.crops, strict=True):
        side = box[2] - box[0]
        assert side == box[3] - box[1]
        assert box[0] < 0 <= box[1]
        assert abs(centre(box)[0] - face_x) <= 0.2 * FACE_WIDTH
        black = int(-box[0] / side * 224)  # crop columns that lie left of the picture
        assert black >= 10
        assert not crop[:, :black - 1].any()
        assert crop[:, black + 2:].mean() > 20
        assert crop.shape == (224, 224, 3)


def test_margin_grows_the_square_around_the_same_centre(face_at_left_edge: np.ndarray) -> None:
    tight = track_faces(face_at_left_edge, margin=0.0).boxes
    wide = track_faces(face_at_left_edge, margin=0.5).boxes
    # side x (1 + 2 x margin), each side rounded to whole pixels
    assert np.allclose(wide[:, 2] - wide[:, 0], 2 * (tight[:, 2] - tight[:, 0]), atol=2)
    assert np.allclose((wide[:, :2] + wide[:, 2:]) / 2, (tight[:, :2] + tight[:, 2:]) / 2, atol=1.5)


def test_no_face_falls_back_to_centre_crops() -> None:
    frames = np.zeros((8, 480, 640, 3), dtype=np.uint8)
    frames[:, :, :80] = (255, 0, 0)
    frames[:, :, 80:560] = (0, 255, 0)  # the centre square
    frames[:, :, 560:] = (0, 0, 255)
    track = track_faces(frames)
    assert track.fallback
    assert not track.detected.any()
    assert track.boxes.tolist() == [[80, 0, 560, 480]] * 8
    assert track.crops.shape == (8, 224, 224, 3)
    assert (track.crops == np.array([0, 255, 0], dtype=np.uint8)).all()


# ---- the track rules, with a scripted detector (frame t is marked by the value t in pixel [0, 0, 0]) ----

def scripted(script: dict[int, list[tuple[float, float, float, float]]]):
    def detect(rgb: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        return [(*box, 1.0) for box in script.get(int(rgb[0, 0, 0]), [])]
    return detect


def marked_frames(n: int = 8, height: int = 400, width: int = 600) -> np.ndarray:
    frames = np.full((n, height, width, 3), 50, dtype=np.uint8)
    frames[:, 0, 0, 0] = np.arange(n)
    return frames


def square(cx: float, cy: float, side: float) -> tuple[float, float, float, float]:
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def test_main_track_is_size_times_frames() -> None:
    script = {t: [square(200, 200, 100), square(40, 40, 30)] for t in range(8)}  # steady face + small spurious
    for t in (0, 1):
        script[t].append(square(450, 150, 180))  # a big face in two frames only: 360 < 800
    track = track_faces(marked_frames(), margin=0.0, detector=scripted(script))
    assert track.detected.all()
    assert track.boxes.tolist() == [[150, 150, 250, 250]] * 8


def test_missed_frames_are_interpolated_inside_and_held_at_the_ends() -> None:
    script = {t: [square(100 + 20 * t, 150, 50)] for t in (1, 2, 4, 5, 6)}
    track = track_faces(marked_frames(), margin=0.0, detector=scripted(script))
    assert track.detected.tolist() == [False, True, True, False, True, True, True, False]
    centres_x = [(b[0] + b[2]) / 2 for b in track.boxes]
    assert centres_x == [120, 120, 140, 160, 180, 200, 220, 220]


def test_one_frame_jitter_is_smoothed_away() -> None:
    script = {t: [square(300, 200, 140 if t == 4 else 100)] for t in range(8)}
    track = track_faces(marked_frames(), margin=0.0, detector=scripted(script))
    assert (track.boxes[:, 2] - track.boxes[:, 0]).tolist() == [100] * 8


def test_rectangular_boxes_become_squares_on_their_long_side() -> None:
    script = {t: [(100, 100, 160, 200)] for t in range(3)}
    track = track_faces(marked_frames(3), margin=0.0, detector=scripted(script))
    assert track.boxes.tolist() == [[80, 100, 180, 200]] * 3


def test_a_face_that_jumps_far_is_another_track() -> None:
    script = {t: [square(100, 100, 80) if t < 5 else square(500, 300, 80)] for t in range(8)}
    track = track_faces(marked_frames(), margin=0.0, detector=scripted(script))
    assert track.detected.tolist() == [True] * 5 + [False] * 3  # 5 frames beat 3 of the same size
    assert track.boxes[7].tolist() == [60, 60, 140, 140]


# ---- bad input ----

@pytest.mark.parametrize("frames", [
    np.zeros((480, 640, 3), dtype=np.uint8),  # one frame, not a [T, ...] stack
    np.zeros((2, 480, 640), dtype=np.uint8),  # grey
    np.zeros((0, 48, 64, 3), dtype=np.uint8),  # no frames
    np.zeros((2, 0, 64, 3), dtype=np.uint8),  # no pixels
    np.zeros((2, 48, 64, 3), dtype=np.float32),  # not 8-bit
], ids=["3d", "grey", "empty", "no-pixels", "float"])
def test_bad_frames_are_input_errors(frames: np.ndarray) -> None:
    with pytest.raises(InputError, match="frames"):
        track_faces(frames)


def test_unknown_detector_name_suggests_the_closest() -> None:
    with pytest.raises(InputError, match="did you mean 'haar'"):
        track_faces(marked_frames(1), detector="hair")


@pytest.mark.reference
def test_profile_passes_find_the_same_face_in_the_mirror_image(reference_dir) -> None:
    """The profile cascade sees one side; the mirrored pass must map its box back onto the same face."""
    av = pytest.importorskip("av")
    with av.open(str(reference_dir / "media" / "sample_00000000.mp4")) as container:
        frame = next(f for i, f in enumerate(container.decode(video=0)) if i == 40).to_ndarray(format="rgb24")

    class ProfileOnly(HaarFaceDetector):
        def _detect(self, grey: np.ndarray, filename: str) -> list:
            return [] if filename == self.FRONTAL else super()._detect(grey, filename)

    width = frame.shape[1]
    direct = ProfileOnly()(frame)
    mirrored = [(width - x1, y0, width - x0, y1) for x0, y0, x1, y1, _ in ProfileOnly()(frame[:, ::-1].copy())]
    assert len(direct) == len(mirrored) == 1
    assert np.allclose(direct[0][:4], mirrored[0], atol=0.05 * (direct[0][2] - direct[0][0]))
