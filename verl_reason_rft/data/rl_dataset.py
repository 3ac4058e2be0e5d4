"""``ReasonRFTRLDataset``: verl's ``RLHFDataset`` with image roots, pixel limits and prompt overrides.

Use it through verl's own hook::

    data.custom_cls.path=pkg://verl_reason_rft.data.rl_dataset data.custom_cls.name=ReasonRFTRLDataset

Config keys (all optional): ``data.image_root``, ``data.max_pixels`` (480000),
``data.min_pixels`` (3136), ``data.prompt_templates``, ``data.prompt_style``, ``data.length_filter``
(``exact``: default, or ``verl``). All the work is done once, on the loaded table; verl's
``__getitem__`` and the rollout-side class methods run unchanged, so there is no per-item cost.

With ``data.filter_overlong_prompts`` on, ``length_filter=exact`` replaces verl's filter (which runs
the processor on every row) by the exact count of :mod:`verl_reason_rft.prompt_tokens` (template
tokens plus each image's tokens from its header size): the same rows are kept, rows that cannot be
measured raise :class:`UnmeasurablePromptsError` naming them instead of being dropped with a print.
``length_filter=verl`` runs verl's own filter.
"""

from __future__ import annotations

import datasets
from verl.utils.dataset.rl_dataset import RLHFDataset

from verl_reason_rft.data.images import MAX_LISTED, ImageSettings, describe_row, resolve_rows
from verl_reason_rft.data.prompt_config import PromptSettings, rerender_columns

LENGTH_FILTERS = ("exact", "verl")


class UnmeasurablePromptsError(ValueError):
    """Some rows' prompts cannot be built (unreadable image, bad prompt): verl would drop them silently."""


def length_filter_of(config) -> str:
    value = str(config.get("length_filter", "exact") or "exact")
    if value not in LENGTH_FILTERS:
        raise ValueError(f"data.length_filter must be one of {', '.join(LENGTH_FILTERS)}, got {value!r}")
    return value


class ReasonRFTRLDataset(RLHFDataset):
    """RL parquet rows (``prompt``, ``images``, ``extra_info`` ...) ready for verl's agent loop."""

    def maybe_filter_out_long_prompts(self, dataframe: datasets.Dataset = None) -> datasets.Dataset:
        # verl calls this right after loading (and again on resume): rows are normalised first, so
        # the length filter sees the same resized images and prompts the rollout will.
        dataframe = self._normalise(dataframe)
        mode = length_filter_of(self.config)
        if not self.filter_overlong_prompts or self.processor is None or mode == "verl":
            return super().maybe_filter_out_long_prompts(dataframe)  # without a processor verl counts text only: cheap
        from verl_reason_rft.prompt_tokens import PromptCounter, UnsupportedProcessor

        try:
            counter = PromptCounter.for_dataset(self)
        except UnsupportedProcessor as exc:
            print(f"data.length_filter=exact: {exc}; running verl's processor-based length filter instead")
            return super().maybe_filter_out_long_prompts(dataframe)
        return self._filter_exact(dataframe, counter)

    def _filter_exact(self, dataframe: datasets.Dataset, counter) -> datasets.Dataset:
        from verl_reason_rft.prompt_tokens import measure_dataset

        measured = measure_dataset(self, dataframe, counter, desc=f"Measuring prompts (limit {self.max_prompt_length} tokens)")
        if measured.failures:
            raise UnmeasurablePromptsError(self._unmeasurable_message(dataframe, measured.failures))
        kept = [i for i, n in enumerate(measured.lengths) if n <= self.max_prompt_length]
        print(f"filter dataset len: {len(kept)} (exact length filter, {len(dataframe) - len(kept)} prompts longer than {self.max_prompt_length} tokens)")
        return dataframe if len(kept) == len(dataframe) else dataframe.select(kept)

    def _unmeasurable_message(self, dataframe: datasets.Dataset, failures: list[tuple[int, str]]) -> str:
        describe = describe_row(lambda i: dataframe[i])
        source = ", ".join(str(f) for f in self.data_files)
        lines = [f"{len(failures)} of {len(dataframe)} prompts in {source} cannot be built (verl's length filter would drop them silently):"]
        lines += [f"  {describe(i)}: {reason}" for i, reason in failures[:MAX_LISTED]]
        if len(failures) > MAX_LISTED:
            lines.append(f"  ... and {len(failures) - MAX_LISTED} more")
        lines.append("Fix or remove these rows (`reason-rft prepare` verifies images), "
                     "or set data.length_filter=verl to let verl's filter drop them.")
        return "\n".join(lines)

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
