"""Visual-counting samples: coloured objects and CLEVR-Math-style add/subtract questions."""

from __future__ import annotations

import random

from verl_reason_rft.data_prep.drawing import COLORS, MATERIALS, SHAPES, SIZES, draw_object, new_canvas, place_without_overlap
from verl_reason_rft.data_prep.sample_item import SampleItem

WIDTH, HEIGHT = 240, 160
#: out-of-domain benchmark: more objects and two subsets, like Super-CLEVR's
OOD_SOURCES = {"super_clevr"}


def _plural(shape: str) -> str:
    return shape + "s"


def _describe(objects: list[dict]) -> str:
    counts: dict[tuple[str, str], int] = {}
    for obj in objects:
        counts[(obj["color"], obj["shape"])] = counts.get((obj["color"], obj["shape"]), 0) + 1
    parts = [f"{n} {color} {_plural(shape) if n > 1 else shape}" for (color, shape), n in sorted(counts.items())]
    return ", ".join(parts)


def make_item(rng: random.Random, data_source: str) -> SampleItem:
    """One scene and one question whose answer is computed from the drawn objects."""
    ood = data_source in OOD_SOURCES
    count = rng.randint(4, 9) if ood else rng.randint(3, 7)
    colors = list(COLORS)
    objects = [
        {
            "shape": rng.choice(SHAPES),
            "color": rng.choice(colors[:4] if not ood else colors),
            "size": rng.choice(list(SIZES)),
            "material": rng.choice(MATERIALS),
        }
        for _ in range(count)
    ]
    image, draw = new_canvas(WIDTH, HEIGHT)
    for obj, (x, y) in zip(objects, place_without_overlap(rng, count, WIDTH, HEIGHT, 24, 36)):
        draw_object(draw, obj["shape"], x, y, SIZES[obj["size"]], obj["color"], obj["material"])

    seen = f"I count {count} objects: {_describe(objects)}."
    kind = rng.choice(("subtract_both", "subtract_color", "subtract_shape", "add", "subtract_two"))
    target = rng.choice(objects)
    if kind == "add":
        k = rng.randint(1, 3)
        noun = f"{target['color']} {_plural(target['shape']) if k > 1 else target['shape']}"
        problem = f"Add {k} {noun}. How many objects exist?"
        answer = count + k
        steps = f"Adding {k} {noun} gives {count} + {k} = {answer}."
    else:
        if kind == "subtract_both":
            phrases = [(f"{target['color']} {_plural(target['shape'])}", lambda o: o["color"] == target["color"] and o["shape"] == target["shape"])]
        elif kind == "subtract_color":
            phrases = [(f"{target['color']} objects", lambda o: o["color"] == target["color"])]
        elif kind == "subtract_shape":
            phrases = [(_plural(target["shape"]), lambda o: o["shape"] == target["shape"])]
        else:
            other = rng.choice(objects)
            phrases = [
                (_plural(target["shape"]), lambda o: o["shape"] == target["shape"]),
                (f"{other['color']} objects", lambda o: o["color"] == other["color"]),
            ]
        problem = " ".join(f"Subtract all {noun}." for noun, _ in phrases) + " How many objects are left?"
        removed = [o for o in objects if any(match(o) for _, match in phrases)]
        answer = count - len(removed)
        names = " or ".join(noun for noun, _ in phrases)
        steps = f"Removing the {names} takes away {len(removed)}, so {count} - {len(removed)} = {answer} objects are left."
    extra = {"subset": "superCLEVR-A" if count <= 6 else "superCLEVR-B"} if ood else {}
    return SampleItem(images=[image], problem=problem, answer=str(answer), reasoning=f"{seen} {steps}", extra=extra)
