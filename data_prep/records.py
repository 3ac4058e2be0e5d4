"""Load one Reason-RFT meta-JSON file and validate every record; bad ones are reported with a reason."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from verl_reason_rft.data_prep.image_check import ImageChecker, resolve_image

#: why a record (or a whole file) was excluded; documented in README.md ("Bad records")
REASONS: dict[str, str] = {
    "missing_file": "the meta-JSON file does not exist",
    "malformed_json": "the file is not valid JSON",
    "not_a_list": "the top level is not a JSON array of records",
    "not_an_object": "a record is not a JSON object",
    "missing_field": "a required field is absent",
    "empty_field": "a required field is empty or blank",
    "wrong_type": "a field has the wrong type (text fields are strings; id and answer may be integers)",
    "placeholder_in_text": "a text field contains an <image>/<video> placeholder (images are placed by prepare)",
    "wrong_image_count": "the record has a different number of images than the task needs",
    "image_not_found": "an image name resolves to no file under the image roots",
    "image_unreadable": "an image file exists but PIL cannot read it",
    "duplicate_id": "the id was already used by an earlier record of the file (the first is kept)",
}
FILE_REASONS = frozenset({"missing_file", "malformed_json", "not_a_list"})
BASE_FIELDS = ("id", "image", "problem", "answer")
PLACEHOLDERS = ("<image>", "<video>")


class BadRecordError(ValueError):
    """Raised in strict mode: names the file, the record index and the field."""


@dataclass(frozen=True)
class Problem:
    file: str
    index: int | None
    reason: str
    detail: str

    def __str__(self) -> str:
        where = self.file if self.index is None else f"{self.file} record {self.index}"
        return f"{where}: {self.reason}: {self.detail}"


@dataclass(frozen=True)
class Record:
    index: int
    id: str
    #: absolute image paths, in order
    images: tuple[str, ...]
    problem: str
    answer: str
    cot: str
    #: the record's other keys, kept verbatim
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetaFile:
    path: Path
    records: list[Record]
    problems: list[Problem]

    @property
    def file_error(self) -> Problem | None:
        return next((p for p in self.problems if p.reason in FILE_REASONS), None)


def _text(record: dict, key: str, required: bool) -> tuple[str | None, tuple[str, str] | None]:
    """The field as a string, or (reason, detail)."""
    if key not in record:
        return None, ("missing_field", f"field {key!r} is missing") if required else None
    value = record[key]
    if key in ("id", "answer") and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None, ("wrong_type", f"field {key!r} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        return None, ("empty_field", f"field {key!r} is empty")
    if any(tag in value for tag in PLACEHOLDERS):
        return None, ("placeholder_in_text", f"field {key!r} contains an <image>/<video> placeholder")
    return value, None


def _image_names(value: Any, expected: int) -> tuple[list[str] | None, tuple[str, str] | None]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None, ("wrong_type", f"field 'image' must be a string or a list of strings, got {type(value).__name__}")
    if len(names) != expected:
        return None, ("wrong_image_count", f"field 'image' has {len(names)} image(s), the task needs {expected}")
    if not all(n.strip() for n in names):
        return None, ("empty_field", "field 'image' has an empty name")
    return names, None


def read_meta_json(
    path: Path,
    *,
    images_per_sample: int,
    image_roots: Sequence[Path],
    require_cot: bool,
    checker: ImageChecker,
) -> MetaFile:
    """Every valid record of ``path`` in file order, and a :class:`Problem` for everything excluded."""
    label = str(path)
    if not path.is_file():
        return MetaFile(path, [], [Problem(label, None, "missing_file", f"no such file {path}")])
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return MetaFile(path, [], [Problem(label, None, "malformed_json", str(exc))])
    if not isinstance(data, list):
        return MetaFile(path, [], [Problem(label, None, "not_a_list", f"top level is a JSON {type(data).__name__}")])

    problems: list[Problem] = []
    pending: list[tuple[int, dict, list[Path]]] = []
    seen_ids: dict[str, int] = {}
    fields = BASE_FIELDS + (("cot",) if require_cot else ())
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            problems.append(Problem(label, index, "not_an_object", f"record is a JSON {type(record).__name__}"))
            continue
        values: dict[str, Any] = {}
        error = None
        for key in fields:
            if key == "image":
                if "image" not in record:
                    error = ("missing_field", "field 'image' is missing")
                else:
                    values["image"], error = _image_names(record["image"], images_per_sample)
            else:
                values[key], error = _text(record, key, required=True)
            if error:
                break
        if not error and not require_cot and "cot" in record:
            values["cot"], error = _text(record, "cot", required=False)
        if error:
            problems.append(Problem(label, index, *error))
            continue
        if values["id"] in seen_ids:
            problems.append(Problem(label, index, "duplicate_id", f"id {values['id']!r} already used by record {seen_ids[values['id']]}"))
            continue
        paths: list[Path] = []
        for name in values["image"]:
            resolved, tried = resolve_image(name, image_roots)
            if resolved is None:
                error = ("image_not_found", f"image {name!r} not found (tried: {', '.join(map(str, tried))})")
                break
            paths.append(resolved)
        if error:
            problems.append(Problem(label, index, *error))
            continue
        seen_ids[values["id"]] = index
        extra = {k: v for k, v in record.items() if k not in BASE_FIELDS and k != "cot"}
        pending.append((index, {**values, "extra": extra}, paths))

    checks = checker.check_all(p for _, _, paths in pending for p in paths)
    records: list[Record] = []
    for index, values, paths in pending:
        bad = next(((p, checks[p]) for p in paths if checks[p]), None)
        if bad:
            problems.append(Problem(label, index, "image_unreadable", f"image {str(bad[0])!r}: {bad[1]}"))
            continue
        records.append(
            Record(
                index=index,
                id=values["id"],
                images=tuple(str(p) for p in paths),
                problem=values["problem"],
                answer=values["answer"],
                cot=values.get("cot") or "",
                extra=values["extra"],
            )
        )
    problems.sort(key=lambda p: (p.index is not None, p.index or 0))
    return MetaFile(path, records, problems)
