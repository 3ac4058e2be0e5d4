"""The exact overlong-prompt filter of ReasonRFTRLDataset against verl's own (processor-based) filter."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf
from verl.trainer.ppo.utils import create_rl_dataset
from verl.utils.dataset.rl_dataset import RLHFDataset

from verl_reason_rft.data.rl_dataset import UnmeasurablePromptsError
from verl_reason_rft.prompt_tokens import PromptCounter, measure_dataset, verl_prompt_tokens
from verl_reason_rft.tasks import get_registry

MODELS = ("tiny_model_dir", "qwen25_model_dir")  # Qwen2-VL and Qwen2.5-VL processor configs


@pytest.fixture(params=MODELS)
def model_processor(request):
    from verl.utils import hf_processor

    from verl_reason_rft.tiny_model import processor_available

    if not processor_available():
        pytest.skip("verl's filter needs the Qwen2-VL processor (torchvision)")
    path = request.getfixturevalue(request.param)
    return path, hf_processor(str(path))


def _config(tmp_path: Path, **overrides):
    base = {
        "max_prompt_length": 1 << 20,
        "filter_overlong_prompts": False,
        "filter_overlong_prompts_workers": None,  # in-process: forked filter workers can hang once torch ran
        "cache_dir": str(tmp_path / "cache"),
        "custom_cls": {"path": "pkg://verl_reason_rft.data.rl_dataset", "name": "ReasonRFTRLDataset"},
    }
    return OmegaConf.create({**base, **overrides})


def _prompt_files(prepared_dir: Path) -> list[Path]:
    """Every GRPO-style parquet ``prepare`` wrote (RL, zero-stage and test files) for the registered tasks."""
    tasks = set(get_registry().tasks)
    files = [p for p in sorted(prepared_dir.glob("*/*.parquet")) if p.parent.name in tasks and "prompt" in pq.read_schema(p).names]
    assert {p.parent.name for p in files} >= {"visual_counting", "structure_perception", "spatial_transformation"}
    return files


def _verl_keeps(plain: RLHFDataset, dataframe, limit: int) -> list[int]:
    """Indices verl's own ``maybe_filter_out_long_prompts`` keeps at ``max_prompt_length=limit``."""
    plain.filter_overlong_prompts, plain.max_prompt_length = True, limit
    kept = RLHFDataset.maybe_filter_out_long_prompts(plain, dataframe.add_column("_row", list(range(len(dataframe)))))
    return list(kept["_row"])


def test_count_equals_verls_filter_on_every_sample_row(prepared_dir, model_processor, tmp_path) -> None:
    """For each row, verl's filter keeps it at our count and drops it one token below: the counts are equal."""
    model, processor = model_processor
    rows = 0
    for path in _prompt_files(prepared_dir):
        ds = create_rl_dataset([str(path)], _config(tmp_path), processor.tokenizer, processor)  # normalised, unfiltered
        ours = measure_dataset(ds, ds.dataframe, PromptCounter.for_dataset(ds))
        assert not ours.failures
        for i, n in enumerate(ours.lengths):
            one = ds.dataframe.select([i])
            assert _verl_keeps(ds, one, n) == [0] and _verl_keeps(ds, one, n - 1) == [], f"{path} row {i}: ours {n}"
        # the same numbers from the model folder alone (what preflight uses without torchvision)
        from_files = measure_dataset(ds, ds.dataframe, PromptCounter.for_model(str(model), processor.tokenizer, ds))
        assert from_files.lengths == ours.lengths
        assert [verl_prompt_tokens(ds, ds.dataframe[i]) for i in range(len(ds))] == ours.lengths
        rows += len(ours.lengths)
    assert rows >= 36


def test_kept_set_equals_verls_at_a_threshold_that_drops_rows(data, model_processor) -> None:
    _, processor = model_processor
    for name, size in (("big/wide.png", (1400, 300)), ("big/tall.png", (500, 1200)), ("big/huge.png", (2000, 2000))):
        data.draw(name, size)
    rows = data.rl_rows() + [
        {**data.rl_rows()[0], "images": [{"image": name}], "extra_info": {**data.rl_rows()[0]["extra_info"], "id": f"big-{k}", "index": 3 + k}}
        for k, name in enumerate(("big/wide.png", "big/tall.png", "big/huge.png"))
    ]
    file = data.rl_file(rows)
    unfiltered = create_rl_dataset([file], data.rl_config(filter_overlong_prompts=False, max_pixels=None), processor.tokenizer, processor)
    lengths = sorted(measure_dataset(unfiltered, unfiltered.dataframe, PromptCounter.for_dataset(unfiltered)).lengths)
    limit = lengths[len(lengths) // 2]
    kept = {}
    for mode in ("exact", "verl"):
        ds = create_rl_dataset([file], data.rl_config(max_prompt_length=limit, max_pixels=None, length_filter=mode), processor.tokenizer, processor)
        kept[mode] = [r["extra_info"]["id"] for r in ds.dataframe]
    assert kept["exact"] == kept["verl"]
    assert 0 < len(kept["exact"]) < len(rows)


def test_broken_image_is_reported_with_row_and_reason_not_dropped(data, processor) -> None:
    (data.image_root / "count/b.png").write_bytes(b"not a png at all")
    with pytest.raises(UnmeasurablePromptsError) as err:
        create_rl_dataset([data.rl_file()], data.rl_config(), processor.tokenizer, processor)
    message = str(err.value)
    assert "1 of 3 prompts" in message and "rl.parquet" in message
    assert "row 1 (id=visual_counting-1, data_source=clevr_math): UnidentifiedImageError" in message
    assert "data.length_filter=verl" in message
    # verl's own filter drops that row with a print only
    silent = create_rl_dataset([data.rl_file()], data.rl_config(length_filter="verl"), processor.tokenizer, processor)
    assert [r["extra_info"]["index"] for r in silent.dataframe] == [0, 2]


def test_length_filter_setting_is_checked(data, processor) -> None:
    with pytest.raises(ValueError, match="data.length_filter must be one of exact, verl"):
        create_rl_dataset([data.rl_file()], data.rl_config(length_filter="fast"), processor.tokenizer, processor)


def test_a_row_verl_cannot_build_is_reported_and_the_rows_after_it_are_still_counted(data, processor) -> None:
    from verl_reason_rft.prompt_tokens import row_messages

    ds = create_rl_dataset([data.rl_file()], data.rl_config(length_filter="verl"), processor.tokenizer, processor)
    rows = [dict(r) for r in ds.dataframe]
    assert len(rows) >= 3
    broken = rows[1]["prompt"][0]
    rows[1]["prompt"] = [{**broken, "content": "<image>" + broken["content"]}]  # one placeholder more than images
    measured = PromptCounter.for_dataset(ds).measure(row_messages(ds, rows))
    assert [i for i, _ in measured.failures] == [1]
    assert measured.lengths[0] and measured.lengths[2] and measured.lengths[1] is None and len(measured.lengths) == len(rows)
