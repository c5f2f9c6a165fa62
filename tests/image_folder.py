"""An image folder in torchvision's ImageFolder layout, made on the fly for the tests of
`data.dataset: folder`: class-structured PNGs (each class its own colour and stripes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("circle", "square", "stripes")


def make_image_folder(root: Path, per_class: dict[str, int], sizes=((24, 24), (40, 32)),
                      seed: int = 0) -> Path:
    """<root>/<split>/<class>/<i>.png for split in per_class ({"train": 40, "test": 12}), images
    of varying sizes (the loader resizes them), learnable from colour and texture."""
    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for c, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                h, w = sizes[i % len(sizes)]
                yy, xx = np.mgrid[0:h, 0:w]
                base = np.zeros((h, w, 3))
                base[..., c] = 0.6 + 0.4 * np.sin((xx if c != 1 else yy) * (c + 1) * 0.5)
                image = np.clip(base + 0.25 * rng.standard_normal((h, w, 3)), 0, 1)
                Image.fromarray((255 * image).astype(np.uint8)).save(folder / f"{i}.png")
    return root
