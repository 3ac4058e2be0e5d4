"""Spatial-transformation samples (TRANCE-like): an initial and a final scene, 1-4 transformation calls."""

from __future__ import annotations

import math
import random
from typing import Sequence

from verl_reason_rft.data_prep.drawing import COLORS, MATERIALS, SHAPES, SIZES, draw_object, new_canvas, place_without_overlap
from verl_reason_rft.data_prep.sample_item import SampleItem

WIDTH, HEIGHT = 240, 160
STEP = 34  # pixels moved by one change_position
MIN_GAP = 32  # a moved object keeps this distance (pixels, centre to centre) from every other object
#: direction -> (dx, dy) in the image; "front" is towards the camera (down)
DIRECTIONS = {
    "front": (0, 1),
    "behind": (0, -1),
    "left": (-1, 0),
    "right": (1, 0),
    "front_left": (-1, 1),
    "front_right": (1, 1),
    "behind_left": (-1, -1),
    "behind_right": (1, -1),
}
#: function -> the object attribute it changes and its allowed values (SPEC §5)
FUNCTIONS = {
    "change_size": ("size", tuple(SIZES)),
    "change_color": ("color", tuple(COLORS)),
    "change_material": ("material", MATERIALS),
    "change_shape": ("shape", SHAPES),
    "change_position": ("position", tuple(DIRECTIONS)),
}
#: test benchmarks rendering the final state from another camera (degrees around the scene centre)
VIEW_ANGLES = {"trance_left": -30.0, "trance_right": 30.0}


def _render(objects: list[dict], angle: float = 0.0):
    image, draw = new_canvas(WIDTH, HEIGHT)
    cx, cy = WIDTH / 2, HEIGHT / 2
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    placed = []
    for obj in objects:
        x, y = obj["position"]
        placed.append((cx + (x - cx) * cos - (y - cy) * sin * 0.6, cy + (x - cx) * sin * 0.6 + (y - cy) * cos, obj))
    for x, y, obj in sorted(placed, key=lambda item: (item[1], item[0])):  # back to front
        draw_object(draw, obj["shape"], x, y, SIZES[obj["size"]], obj["color"], obj["material"])
    return image


def _inside(x: float, y: float) -> bool:
    return 20 <= x <= WIDTH - 20 and 20 <= y <= HEIGHT - 20


def _free(x: float, y: float, others: Sequence[tuple[float, float]]) -> bool:
    return all((x - ox) ** 2 + (y - oy) ** 2 >= MIN_GAP**2 for ox, oy in others)


def _apply(rng: random.Random, obj: dict, func: str, others: Sequence[tuple[float, float]] = ()) -> str | None:
    """Change ``obj`` in place with a random new value for ``func``; the value, or None if impossible.

    A move stays on the canvas and at least ``MIN_GAP`` from ``others`` (the other objects' current
    positions), so no object ends up hidden behind another in the final image.
    """
    attribute, values = FUNCTIONS[func]
    if attribute == "position":
        x, y = obj["position"]
        targets = {d: (x + dx * STEP, y + dy * STEP) for d, (dx, dy) in DIRECTIONS.items()}
        moves = [d for d, (nx, ny) in targets.items() if _inside(nx, ny) and _free(nx, ny, others)]
        if not moves:
            return None
        direction = rng.choice(moves)
        obj["position"] = targets[direction]
        return direction
    value = rng.choice([v for v in values if v != obj[attribute]])
    obj[attribute] = value
    return value


def make_item(rng: random.Random, data_source: str) -> SampleItem:
    """Initial scene, 1-4 distinct (object, function) changes, final scene (rotated camera for left/right)."""
    count = rng.randint(3, 5)
    positions = place_without_overlap(rng, count, WIDTH, HEIGHT, 40, 44)
    initial = [
        {
            "id": i,
            "shape": rng.choice(SHAPES),
            "size": rng.choice(tuple(SIZES)),
            "color": rng.choice(tuple(COLORS)),
            "material": rng.choice(MATERIALS),
            "position": (round(x), round(y)),
        }
        for i, (x, y) in enumerate(positions)
    ]
    final = [dict(obj) for obj in initial]
    pairs = [(obj["id"], func) for obj in initial for func in FUNCTIONS]
    rng.shuffle(pairs)
    wanted = rng.randint(1, 4)
    calls: list[str] = []
    steps: list[str] = []
    for object_id, func in pairs:
        if len(calls) == wanted:
            break
        others = [o["position"] for o in final if o["id"] != object_id]
        value = _apply(rng, final[object_id], func, others)
        if value is None:
            continue
        calls.append(f"{func}({object_id}, {value})")
        attribute = FUNCTIONS[func][0]
        steps.append(
            f"object {object_id} moved {value.replace('_', ' ')}" if attribute == "position" else f"object {object_id} now has {attribute} {value}"
        )
    attributes = ", ".join(
        f"({o['id']}, '{o['shape']}', '{o['size']}', '{o['color']}', '{o['material']}')" for o in initial
    )
    problem = f"The attributes of the initial objects are: [{attributes}]."
    angle = VIEW_ANGLES.get(data_source, 0.0)
    images = [_render(initial), _render(final, angle)]
    reasoning = "Comparing the two images: " + "; ".join(steps) + ". So the transformation is " + ", ".join(calls) + "."
    extra = {"view": data_source.removeprefix("trance_") if data_source in VIEW_ANGLES else "center"}
    extra = extra if data_source != "spatial_transformation" else {}
    return SampleItem(images=images, problem=problem, answer=", ".join(calls), reasoning=reasoning, extra=extra)
