"""Structure-perception samples: labelled geometry diagrams with choice (A-D) or numeric questions."""

from __future__ import annotations

import math
import random

from PIL import ImageDraw

from verl_reason_rft.data_prep.drawing import new_canvas
from verl_reason_rft.data_prep.sample_item import SampleItem

SIZE = 200
TRIPLES = ((3, 4, 5), (5, 12, 13), (6, 8, 10), (8, 15, 17), (9, 12, 15), (7, 24, 25))
LETTERS = "ABCD"


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str) -> None:
    draw.text(xy, text, fill=(0, 0, 0))


def _right_triangle(rng: random.Random, draw: ImageDraw.ImageDraw) -> tuple[str, float, str]:
    a, b, c = rng.choice(TRIPLES)
    scale = 140 / max(a, b)
    C, A, B = (30, 170), (30, 170 - b * scale), (30 + a * scale, 170)
    draw.polygon([C, A, B], outline=(0, 0, 0), width=2)
    draw.rectangle((C[0], C[1] - 10, C[0] + 10, C[1]), outline=(0, 0, 0))
    for name, point, offset in (("C", C, (-12, 0)), ("A", A, (-12, -6)), ("B", B, (4, 0))):
        _label(draw, (point[0] + offset[0], point[1] + offset[1]), name)
    _label(draw, (8, (A[1] + C[1]) / 2), str(b))
    _label(draw, ((C[0] + B[0]) / 2, 176), str(a))
    if rng.random() < 0.5:
        question = f"In right triangle ABC, angle C = 90°, BC = {a} and AC = {b}. Find the length of AB."
        return question, c, f"By the Pythagorean theorem AB = sqrt({a}^2 + {b}^2) = sqrt({a * a + b * b}) = {c}."
    area = a * b / 2
    question = f"In right triangle ABC, angle C = 90°, BC = {a} and AC = {b}. Find the area of triangle ABC."
    return question, area, f"The legs are {a} and {b}, so the area is {a} * {b} / 2 = {_fmt(area)}."


def _triangle_angles(rng: random.Random, draw: ImageDraw.ImageDraw) -> tuple[str, float, str]:
    x, y = rng.randrange(30, 90, 5), rng.randrange(30, 80, 5)
    z = 180 - x - y
    # draw with the true angles at A and B on a base of fixed length
    A, B = (20.0, 170.0), (180.0, 170.0)
    ta, tb = math.tan(math.radians(x)), math.tan(math.radians(y))
    px = (B[0] * tb + A[0] * ta) / (ta + tb)
    C = (px, A[1] - (px - A[0]) * ta)
    draw.polygon([A, B, C], outline=(0, 0, 0), width=2)
    _label(draw, (A[0] - 4, A[1] + 4), "A")
    _label(draw, (B[0] - 4, B[1] + 4), "B")
    _label(draw, (C[0] - 3, max(0.0, C[1] - 14)), "C")
    _label(draw, (A[0] + 16, A[1] - 14), f"{x}°")
    _label(draw, (B[0] - 34, B[1] - 14), f"{y}°")
    question = f"In triangle ABC, angle A = {x}° and angle B = {y}°. Find the measure of angle C in degrees."
    return question, z, f"The angles of a triangle sum to 180°, so angle C = 180 - {x} - {y} = {z}."


def _rectangle(rng: random.Random, draw: ImageDraw.ImageDraw) -> tuple[str, float, str]:
    w, h = rng.randint(3, 12), rng.randint(2, 9)
    scale = 150 / max(w, h)
    x0, y0 = 25, 25
    draw.rectangle((x0, y0, x0 + w * scale, y0 + h * scale), outline=(0, 0, 0), width=2)
    _label(draw, (x0 + w * scale / 2, y0 + h * scale + 4), str(w))
    _label(draw, (x0 + w * scale + 4, y0 + h * scale / 2), str(h))
    for name, point in zip("DCBA", ((x0, y0), (x0 + w * scale, y0), (x0 + w * scale, y0 + h * scale), (x0, y0 + h * scale))):
        _label(draw, (point[0] - 10, point[1] - 12), name)
    if rng.random() < 0.5:
        return (
            f"Rectangle ABCD has AB = {w} and BC = {h}. Find its perimeter.",
            2 * (w + h),
            f"The perimeter is 2 * ({w} + {h}) = {2 * (w + h)}.",
        )
    return f"Rectangle ABCD has AB = {w} and BC = {h}. Find its area.", w * h, f"The area is {w} * {h} = {w * h}."


def _circle(rng: random.Random, draw: ImageDraw.ImageDraw) -> tuple[str, float, str]:
    r = rng.randint(2, 15)
    draw.ellipse((30, 30, 170, 170), outline=(0, 0, 0), width=2)
    draw.line((100, 100, 170, 100), fill=(0, 0, 0), width=2)
    _label(draw, (92, 104), "O")
    _label(draw, (172, 94), "P")
    _label(draw, (130, 88), str(r))
    return (
        f"Circle O has radius OP = {r}. Find the length of a diameter of circle O.",
        2 * r,
        f"A diameter is twice the radius: 2 * {r} = {2 * r}.",
    )


FIGURES = (_right_triangle, _triangle_angles, _rectangle, _circle)


def _choices(rng: random.Random, correct: float) -> tuple[list[str], int]:
    options = {_fmt(correct)}
    while len(options) < 4:
        delta = rng.choice((-3, -2, -1, 1, 2, 3, 5)) * max(1.0, round(abs(correct) / 10))
        if correct + delta > 0:
            options.add(_fmt(correct + delta))
    ordered = sorted(options, key=float)
    return ordered, ordered.index(_fmt(correct))


def make_item(rng: random.Random, data_source: str) -> SampleItem:
    """A diagram; half the questions are multiple choice (answer a letter), half numeric."""
    image, draw = new_canvas(SIZE, SIZE)
    draw.rectangle((0, 0, SIZE - 1, SIZE - 1), fill=(255, 255, 255))
    question, value, reasoning = rng.choice(FIGURES)(rng, draw)
    if rng.random() < 0.5:
        options, correct = _choices(rng, value)
        listing = "\n".join(f"{letter}: {option}" for letter, option in zip(LETTERS, options))
        problem = f"Question: {question}\nChoices:\n{listing}"
        answer = LETTERS[correct]
        reasoning = f"{reasoning} This matches choice {answer}."
    else:
        problem = f"Question: {question}"
        answer = _fmt(value)
    return SampleItem(images=[image], problem=problem, answer=answer, reasoning=reasoning)
