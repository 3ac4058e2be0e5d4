"""``ReasonRFTSFTDataset``: verl's ``MultiTurnSFTDataset`` with image roots, pixel limits and prompt overrides.

Use it through verl's own hook::

    data.custom_cls.path=pkg://verl_reason_rft.data.sft_dataset data.custom_cls.name=ReasonRFTSFTDataset

Same config keys as :mod:`verl_reason_rft.data.rl_dataset`. Image entries become
``{"image": "/abs/path", "max_pixels": ..., "min_pixels": ...}`` (a plain path string crashes
``MultiTurnSFTDataset``); the user turn is re-rendered when prompts are overridden (the assistant
target is left as written: use ``ans_sft.parquet`` for ANS targets). Done once, at load time;
per item, only the image entries are copied (see ``_build_messages``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset
from verl.utils.py_functional import convert_nested_value_to_list_recursive

from verl_reason_rft.data.images import ImageSettings, describe_row, resolve_rows
from verl_reason_rft.data.prompt_config import PromptSettings, rerender_columns


def _objects(values: list) -> np.ndarray:
    """A 1-D object array (a pandas column of lists, whatever the index)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


class ReasonRFTSFTDataset(MultiTurnSFTDataset):
    """SFT parquet rows (``messages``, ``images``, ``extra_info`` ...) ready for verl's SFT trainer."""

    def __init__(self, parquet_files, tokenizer, config, processor=None, max_samples: int = -1) -> None:
        self.config = config or {}  # verl's class reads its keys in __init__ and keeps none of them
        super().__init__(parquet_files, tokenizer, config, processor=processor, max_samples=max_samples)

    def _read_files_and_process(self) -> None:
        super()._read_files_and_process()
        frame = self.dataframe
        source = ", ".join(str(f) for f in self.parquet_files)
        describe = describe_row(lambda i: frame.iloc[i].to_dict())
        column = lambda name: [convert_nested_value_to_list_recursive(v) for v in frame[name].tolist()]  # noqa: E731

        n_images = None
        if self.image_key in frame.columns:
            images = resolve_rows(column(self.image_key), ImageSettings.from_config(self.config), source, describe)
            n_images = [len(row) for row in images]
            frame[self.image_key] = _objects(images)

        prompts = PromptSettings.from_config(self.config)
        if prompts is not None:
            messages, infos = rerender_columns(
                prompts, frame.columns, column, self.messages_key, n_images, source, describe
            )
            frame[self.messages_key] = _objects(messages)
            frame["extra_info"] = _objects(infos)
            self.messages = messages
        self.dataframe = frame

    def _build_messages(self, example: dict):
        # verl's image loader stores the decoded image into a ``{"bytes": ...}`` entry it is given.
        # Our entries are Python objects held by the dataframe (verl's are rebuilt from Arrow on every
        # read), so hand it copies: otherwise every read image stays decoded in memory and the next
        # read of the row fails ("Cannot have both `bytes` and `image`").
        if self.image_key in example:
            entries = example[self.image_key]
            example = {**example, self.image_key: [dict(e) if isinstance(e, Mapping) else e for e in entries]}
        return super()._build_messages(example)
