"""The images the open_lth fixtures of tests/data/open_lth/ were trained on: a few hundred
learnable 32 x 32 colour images in CIFAR-10's on-disk layout (torchvision's pickled
`cifar-10-batches-py/`), drawn from numpy's legacy RandomState, whose stream numpy keeps fixed.

    python tests/open_lth_data.py <root>    # writes <root>/cifar10/cifar-10-batches-py/

open_lth reads them from <its dataset root>/cifar10/, the kit from <data.root>/cifar10/. Their
SHA-256 is checked against FILES_SHA256, so a test never compares with open_lth's numbers on
other images. The files are not torchvision's, so torchvision's MD5 check of CIFAR-10 has to be
switched off to read them (`skip_torchvision_md5`).
"""

from __future__ import annotations

import hashlib
import pickle
import sys
from pathlib import Path

import numpy as np

TRAIN, TEST, CLASSES, SEED = 300, 200, 10, 33
BATCHES = 5  # data_batch_1..5, as torchvision expects
FOLDER = "cifar-10-batches-py"
FILES_SHA256 = "17b899cd5ccffa43a9d422b42b489914aa15cb090bd2b88c3cecf89b023aaa8a"  # see _digest


def _images(rng: np.random.RandomState, n: int) -> tuple[np.ndarray, list[int]]:
    """n images (N x 32 x 32 x 3 uint8) and labels: class c is a grating of its own
    orientation, frequency and colour, at a random phase, under noise."""
    labels = rng.randint(0, CLASSES, size=n)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float64)
    out = np.empty((n, 32, 32, 3), dtype=np.uint8)
    for i, c in enumerate(labels):
        angle, freq = np.pi * c / CLASSES, 0.25 + 0.05 * c
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)) + phase)
        colour = np.array([(c % 3) / 2, ((c // 3) % 3) / 2, 1 - c / CLASSES])
        image = 0.2 + 0.6 * colour + 0.25 * wave[..., None] + 0.15 * rng.randn(32, 32, 3)
        out[i] = np.clip(255 * image, 0, 255).astype(np.uint8)
    return out, [int(x) for x in labels]


def _batch(images: np.ndarray, labels: list[int], name: str) -> dict:
    """One pickled batch as CIFAR-10's python version has it (rows: R, G, B planes)."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return {"batch_label": name, "labels": labels, "data": data,
            "filenames": [f"{name}_{i}.png" for i in range(len(images))]}


def write_cifar10_layout(root: Path) -> Path:
    """<root>/cifar10/cifar-10-batches-py/ with TRAIN training and TEST test images; returns
    <root> (open_lth's dataset root, the kit's data.root)."""
    folder = Path(root) / "cifar10" / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(SEED)
    train, train_labels = _images(rng, TRAIN)
    test, test_labels = _images(rng, TEST)
    per = TRAIN // BATCHES
    files = {f"data_batch_{b + 1}": _batch(train[b * per:(b + 1) * per],
                                           train_labels[b * per:(b + 1) * per],
                                           f"training batch {b + 1} of {BATCHES}")
             for b in range(BATCHES)}
    files["test_batch"] = _batch(test, test_labels, "testing batch 1 of 1")
    files["batches.meta"] = {"label_names": [f"class_{c}" for c in range(CLASSES)],
                             "num_cases_per_batch": per, "num_vis": 3072}
    for name, content in files.items():
        (folder / name).write_bytes(pickle.dumps(content, protocol=2))
    return Path(root)


def _digest(root: Path) -> str:
    """SHA-256 over the decoded images and labels of every batch (not the pickle bytes)."""
    h = hashlib.sha256()
    folder = Path(root) / "cifar10" / FOLDER
    for name in [f"data_batch_{b + 1}" for b in range(BATCHES)] + ["test_batch"]:
        batch = pickle.loads((folder / name).read_bytes())
        h.update(np.ascontiguousarray(batch["data"]).tobytes())
        h.update(np.asarray(batch["labels"], dtype=np.int64).tobytes())
    return h.hexdigest()


def skip_torchvision_md5(monkeypatch) -> None:
    """Let torchvision read these files as CIFAR-10 (they fail its MD5 check of the real ones)."""
    import torchvision.datasets.cifar as cifar

    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)


if __name__ == "__main__":
    where = write_cifar10_layout(Path(sys.argv[1]))
    print(f"{where / 'cifar10' / FOLDER}: {TRAIN} training, {TEST} test images; "
          f"sha256 {_digest(where)}")
