"""PIL primitives shared by the sample-scene generators: CLEVR-like objects on a plain floor."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

#: CLEVR's eight colours (SPEC §5 lists them as ``change_color`` values).
COLORS: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
SHAPES = ("cube", "sphere", "cylinder")
SIZES = {"small": 11, "medium": 15, "large": 20}  # half-extent in pixels
MATERIALS = ("rubber", "metal", "glass")
BACKGROUND = (205, 205, 200)


def new_canvas(width: int, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (width, height), BACKGROUND)
    return image, ImageDraw.Draw(image)


def _shade(rgb: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, int(c * factor))) for c in rgb)  # type: ignore[return-value]


def draw_object(
    draw: ImageDraw.ImageDraw, shape: str, x: float, y: float, half: float, color: str, material: str = "rubber"
) -> None:
    """One object centred at (x, y); metal gets a highlight, glass a light outline and paler fill."""
    rgb = COLORS[color]
    fill = _shade(rgb, 1.0) if material != "glass" else tuple((c + 255) // 2 for c in rgb)
    outline = (255, 255, 255) if material == "glass" else _shade(rgb, 0.6)
    box = (x - half, y - half, x + half, y + half)
    if shape == "cube":
        draw.rectangle(box, fill=fill, outline=outline, width=2)
    elif shape == "sphere":
        draw.ellipse(box, fill=fill, outline=outline, width=2)
    elif shape == "cylinder":
        draw.rectangle((x - half, y - half * 0.6, x + half, y + half * 0.6), fill=fill, outline=outline, width=2)
        draw.ellipse((x - half, y - half, x + half, y - half * 0.2), fill=_shade(fill, 1.15), outline=outline, width=2)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    if material == "metal":
        r = max(2.0, half / 4)
        draw.ellipse((x - half / 2 - r, y - half / 2 - r, x - half / 2 + r, y - half / 2 + r), fill=(250, 250, 250))


def save_png(image: Image.Image, path: Path) -> None:
    """Deterministic PNG (no metadata, fixed compression) written in one piece."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def place_without_overlap(
    rng, count: int, width: int, height: int, margin: int, min_gap: float, tries: int = 200
) -> list[tuple[float, float]]:
    """``count`` centres inside the canvas at least ``min_gap`` apart (best effort after ``tries``)."""
    points: list[tuple[float, float]] = []
    for _ in range(count):
        best = None
        for _ in range(tries):
            candidate = (rng.uniform(margin, width - margin), rng.uniform(margin, height - margin))
            if all((candidate[0] - p[0]) ** 2 + (candidate[1] - p[1]) ** 2 >= min_gap**2 for p in points):
                best = candidate
                break
            best = candidate
        points.append(best)  # type: ignore[arg-type]
    return points
