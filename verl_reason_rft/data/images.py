"""Image entries of dataset rows: resolve paths against ``data.image_root``, add pixel limits.

Both dataset classes turn each ``images`` entry into ``{"image": "/abs/path", "max_pixels": ...,
"min_pixels": ...}`` once, when the files are loaded. verl hands those keys to
``qwen_vl_utils.fetch_image`` (dataset-side length filter, agent-loop rollout, SFT), which resizes
each image to at most ``max_pixels``. Every path that does not exist is reported in one error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from verl_reason_rft.data_prep.image_check import resolve_image

#: SPEC §8: the paper's per-image pixel limits.
DEFAULT_MAX_PIXELS = 480_000
DEFAULT_MIN_PIXELS = 3_136
#: at most this many missing images are listed in the error
MAX_LISTED = 10
_PASS_THROUGH = ("http://", "https://", "data:")


def describe_row(get_row: Callable[[int], Mapping[str, Any]]) -> Callable[[int], str]:
    """A ``describe(i)`` for error messages: the row number, plus its id and data source when known."""

    def describe(i: int) -> str:
        row = get_row(i)
        info = row.get("extra_info")
        details = [f"id={info['id']}"] if isinstance(info, Mapping) and info.get("id") is not None else []
        if row.get("data_source") is not None:
            details.append(f"data_source={row['data_source']}")
        return f"row {i} ({', '.join(details)})" if details else f"row {i}"

    return describe


class MissingImagesError(FileNotFoundError):
    """Some rows name image files that do not exist."""


@dataclass(frozen=True)
class ImageSettings:
    """``data.image_root`` / ``data.max_pixels`` / ``data.min_pixels`` (null: leave that key alone)."""

    image_root: Path | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    min_pixels: int | None = DEFAULT_MIN_PIXELS

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ImageSettings:
        root = config.get("image_root", None)
        settings = cls(
            image_root=Path(os.fspath(root)).expanduser().resolve() if root else None,
            max_pixels=_pixels(config, "max_pixels", DEFAULT_MAX_PIXELS),
            min_pixels=_pixels(config, "min_pixels", DEFAULT_MIN_PIXELS),
        )
        if settings.max_pixels is not None and settings.min_pixels is not None and settings.max_pixels < settings.min_pixels:
            raise ValueError(f"data.max_pixels ({settings.max_pixels}) is smaller than data.min_pixels ({settings.min_pixels})")
        return settings

    @property
    def pixel_keys(self) -> dict[str, int]:
        keys = {"max_pixels": self.max_pixels, "min_pixels": self.min_pixels}
        return {k: v for k, v in keys.items() if v is not None}


def _pixels(config: Mapping[str, Any], key: str, default: int) -> int | None:
    value = config.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"data.{key} must be a positive integer or null, got {value!r}")
    return value


@dataclass(frozen=True)
class _Missing:
    row: int
    position: int
    name: str
    tried: tuple[Path, ...]


def _path_of(entry: Any) -> str | None:
    """The local path an entry names, or None (bytes, PIL images, URLs)."""
    if isinstance(entry, os.PathLike):
        entry = os.fspath(entry)
    if isinstance(entry, Mapping):
        if entry.get("bytes") is not None:
            return None
        entry = entry.get("image") if entry.get("image") is not None else entry.get("path")
    if not isinstance(entry, str) or entry.startswith(_PASS_THROUGH):
        return None
    return entry[len("file://"):] if entry.startswith("file://") else entry


def _resolve_entry(entry: Any, settings: ImageSettings, roots: list[Path]) -> tuple[Any, tuple[Path, ...] | None]:
    """(the normalised entry, the paths tried if the file is missing)."""
    pixels = settings.pixel_keys
    name = _path_of(entry)
    if name is None:
        if isinstance(entry, Mapping):  # bytes or URL dict: keep it, without null keys (verl trips on them)
            return {**{k: v for k, v in entry.items() if v is not None}, **pixels}, None
        if isinstance(entry, str):  # URL or data URI
            return {"image": entry, **pixels}, None
        return entry, None  # PIL image: verl handles it as is
    path, tried = resolve_image(name, roots)
    if path is None:
        return entry, tuple(tried)
    return {"image": str(path), **pixels}, None


def resolve_rows(
    rows: Sequence[Sequence[Any] | None],
    settings: ImageSettings,
    source: str,
    describe: Callable[[int], str] = lambda i: f"row {i}",
) -> list[list[Any]]:
    """Every row's image entries resolved; raises :class:`MissingImagesError` naming the missing ones.

    ``source`` names the data files (for the message), ``describe(i)`` a row (e.g. with its id).
    """
    roots = [settings.image_root] if settings.image_root else [Path.cwd()]
    resolved: list[list[Any]] = []
    missing: list[_Missing] = []
    total = 0
    for i, row in enumerate(rows):
        out = []
        for k, entry in enumerate(row or []):
            total += 1
            new, tried = _resolve_entry(entry, settings, roots)
            if tried is not None:
                missing.append(_Missing(i, k, str(_path_of(entry)), tried))
            out.append(new)
        resolved.append(out)
    if missing:
        raise MissingImagesError(_missing_message(missing, total, settings, source, describe))
    return resolved


def _missing_message(
    missing: list[_Missing], total: int, settings: ImageSettings, source: str, describe: Callable[[int], str]
) -> str:
    root = f"data.image_root={settings.image_root}" if settings.image_root else f"data.image_root unset (cwd {Path.cwd()})"
    lines = [f"{len(missing)} of {total} images named in {source} do not exist ({root}):"]
    for m in missing[:MAX_LISTED]:
        tried = ", ".join(str(p) for p in m.tried)
        lines.append(f"  {describe(m.row)}: images[{m.position}] = {m.name!r} (tried {tried})")
    if len(missing) > MAX_LISTED:
        lines.append(f"  ... and {len(missing) - MAX_LISTED} more")
    lines.append(
        "Relative image paths are resolved against data.image_root: set it to the folder they start from "
        "(e.g. data.image_root=/path/to/Reason-RFT-CoT-Dataset/images/train_images), "
        "or re-run `reason-rft prepare` to write absolute paths."
    )
    return "\n".join(lines)
