"""Fixtures for data-prep tests: a private, editable copy of the generated sample dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


class DatasetCopy:
    """A copy of the sample dataset whose meta-JSON files a test may break."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, split: str, file_name: str) -> Path:
        return self.root / f"{split}_jsons" / file_name

    def load(self, split: str, file_name: str):
        return json.loads(self.path(split, file_name).read_text(encoding="utf-8"))

    def save(self, split: str, file_name: str, data) -> None:
        self.path(split, file_name).write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture
def dataset_copy(sample_dataset_dir: Path, tmp_path: Path) -> DatasetCopy:
    root = tmp_path / "Reason-RFT-CoT-Dataset"
    shutil.copytree(sample_dataset_dir, root)
    return DatasetCopy(root)
