"""``ReasonRFTRLDataset``: verl's ``RLHFDataset`` with image roots, pixel limits and prompt overrides.

Use it through verl's own hook::

    data.custom_cls.path=pkg://verl_reason_rft.data.rl_dataset data.custom_cls.name=ReasonRFTRLDataset

Config keys (all optional): ``data.image_root``, ``data.max_pixels`` (480000),
``data.min_pixels`` (3136), ``data.prompt_templates``, ``data.prompt_style``.
All the work is done once, on the loaded table, before verl's overlong-prompt filter; verl's
``__getitem__`` and the rollout-side class methods run unchanged, so there is no per-item cost.
"""

from __future__ import annotations

import datasets
from verl.utils.dataset.rl_dataset import RLHFDataset

from verl_reason_rft.data.images import ImageSettings, describe_row, resolve_rows
from verl_reason_rft.data.prompt_config import PromptSettings, rerender_columns


class ReasonRFTRLDataset(RLHFDataset):
    """RL parquet rows (``prompt``, ``images``, ``extra_info`` ...) ready for verl's agent loop."""

    def maybe_filter_out_long_prompts(self, dataframe: datasets.Dataset = None) -> datasets.Dataset:
        # verl calls this right after loading (and again on resume): rows are normalised first, so
        # the length filter sees the same resized images and prompts the rollout will.
        return super().maybe_filter_out_long_prompts(self._normalise(dataframe))

    def _normalise(self, dataframe: datasets.Dataset) -> datasets.Dataset:
        describe = describe_row(lambda i: dataframe[i])
        source = ", ".join(str(f) for f in self.data_files)
        n_images = None
        if self.image_key in dataframe.column_names:
            images = resolve_rows(dataframe[self.image_key], ImageSettings.from_config(self.config), source, describe)
            n_images = [len(row) for row in images]
            dataframe = dataframe.remove_columns(self.image_key).add_column(self.image_key, images)

        prompts = PromptSettings.from_config(self.config)
        if prompts is None:
            return dataframe
        new_prompts, new_extra = rerender_columns(
            prompts, dataframe.column_names, dataframe.__getitem__, self.prompt_key, n_images, source, describe
        )
        dataframe = dataframe.remove_columns([self.prompt_key, "extra_info"])
        return dataframe.add_column(self.prompt_key, new_prompts).add_column("extra_info", new_extra)
