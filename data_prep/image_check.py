"""Resolve record image names to files and check that PIL can read them (cached, threaded)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Sequence

from PIL import Image
from tqdm import tqdm


def resolve_image(name: str, roots: Sequence[Path]) -> tuple[Path | None, list[Path]]:
    """The first existing ``root/name`` (or ``name`` itself when absolute), and every path tried."""
    candidate = Path(name)
    tried = [candidate] if candidate.is_absolute() else [Path(root) / name for root in roots]
    for path in tried:
        if path.is_file():
            return path.resolve(), tried
    return None, tried


def image_problem(path: Path, full: bool = True) -> str | None:
    """None if PIL reads ``path``; otherwise the error. ``full`` runs ``verify()`` (checks every chunk's CRC)."""
    try:
        with Image.open(path) as image:
            if full:
                image.verify()
            else:
                image.size  # noqa: B018  (the header is parsed by open())
    except Exception as exc:  # PIL raises many types for a bad file
        return f"{type(exc).__name__}: {exc}"
    return None


class ImageChecker:
    """Checks each distinct path once; ``check_all`` uses a thread pool (PIL releases the GIL in zlib)."""

    def __init__(self, full: bool = True, workers: int | None = None, progress: bool = False) -> None:
        self.full = full
        self.progress = progress
        self.workers = workers or min(8, (os.cpu_count() or 1) * 2)
        self._results: dict[Path, str | None] = {}

    def check_all(self, paths: Iterable[Path]) -> dict[Path, str | None]:
        todo = sorted({p for p in paths if p not in self._results})
        if todo:
            bar = tqdm(total=len(todo), desc="images", unit="img", leave=False, disable=not self.progress)
            with bar, ThreadPoolExecutor(self.workers) as pool:
                for path, problem in zip(todo, pool.map(lambda p: image_problem(p, self.full), todo)):
                    self._results[path] = problem
                    bar.update(1)
        return self._results
