"""Faces where the tests put them: the astronaut's head pasted onto photos, with where its face landed."""
from __future__ import annotations

from PIL import Image

from sidecar.transform import faces
from tests.support.paths import DATA

ASTRONAUT = DATA / "astronaut.jpg"
#: The face in astronaut.jpg, labelled by hand: brow to chin, ear to ear.
FACE = (178, 62, 272, 164)
#: The head and shoulders pasted onto photos, and where the face is in it.
HEAD = (130, 0, 330, 230)
HEAD_FACE = (FACE[0] - HEAD[0], FACE[1] - HEAD[1], FACE[2] - HEAD[0], FACE[3] - HEAD[1])


def with_heads(background: Image.Image, places: list[tuple[int, int, float]]) -> tuple[Image.Image, list[faces.Face]]:
    """`background` with the astronaut's head pasted at each (left, top, scale); the face boxes as fractions."""
    head = Image.open(ASTRONAUT).convert("RGB").crop(HEAD)
    labels = []
    for left, top, scale in places:
        pasted = head.resize((round(head.width * scale), round(head.height * scale)), Image.Resampling.LANCZOS)
        background.paste(pasted, (left, top))
        w, h = background.width, background.height
        labels.append(((left + HEAD_FACE[0] * scale) / w, (top + HEAD_FACE[1] * scale) / h,
                       (left + HEAD_FACE[2] * scale) / w, (top + HEAD_FACE[3] * scale) / h))
    return background, labels
