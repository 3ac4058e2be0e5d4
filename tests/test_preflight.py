"""``reason-rft preflight`` on real prepared data: passes on good data, names the setting on bad data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq

from verl_reason_rft.cli import main
from verl_reason_rft.pipeline import TINY_GRPO_OVERRIDES
from verl_reason_rft.preflight import ERROR, StageCheck, run_preflight
from verl_reason_rft.recipe_config import GRPO, SFT

TASK = "spatial_transformation"


def _overrides(model: Path, data: Path, *extra: str) -> tuple[str, ...]:
    return (f"task={TASK}", "model=tiny", f"model.path={model}", f"data_dir={data}", *extra)


def _grpo(model: Path, data: Path, *extra: str) -> StageCheck:
    # the tiny model has 4096 positions: the pipeline's GRPO prompt limit leaves room for 512 response tokens
    return StageCheck("grpo", GRPO, _overrides(model, data, *TINY_GRPO_OVERRIDES, *extra))


def _errors(report) -> str:
    return "\n".join(p.message for p in report.problems if p.severity == ERROR)


def test_grpo_passes_on_prepared_samples(tiny_model_dir: Path, prepared_dir: Path) -> None:
    report = run_preflight([_grpo(tiny_model_dir, prepared_dir)])
    assert report.ok, report.render()
    splits = {s.split: s for s in report.rl}
    assert set(splits) == {"rl.parquet", "test_trance.parquet", "test_trance_left.parquet", "test_trance_right.parquet"}
    for stats in splits.values():
        assert stats.rows == len(pq.read_table(prepared_dir / TASK / stats.split)) and stats.over_limit == 0
        assert stats.max_images == stats.image_limit == 2
        assert min(stats.tokens) > 2 * 4  # two images and the preamble
        assert stats.reward_ok.endswith("ok") and not stats.reward_ok.startswith("0/")


def test_grpo_prompt_tokens_are_exact_without_a_processor(tiny_model_dir: Path, prepared_dir: Path, monkeypatch) -> None:
    """Where transformers cannot build the processor (no torchvision), the counts come from the processor config
    and equal verl's processor-based ``len(input_ids)``: no ``~`` estimate."""
    import verl.utils
    from verl.trainer.ppo.utils import create_rl_dataset
    from verl.utils import hf_processor

    from verl_reason_rft.prompt_tokens import verl_prompt_tokens
    from verl_reason_rft.recipe_config import compose_recipe

    processor = hf_processor(str(tiny_model_dir))
    check = _grpo(tiny_model_dir, prepared_dir)
    cfg = compose_recipe(check.config_name, check.overrides)
    cfg.data.filter_overlong_prompts = False
    ds = create_rl_dataset([str(prepared_dir / TASK / "rl.parquet")], cfg.data, processor.tokenizer, processor)
    expected = [verl_prompt_tokens(ds, ds.dataframe[i]) for i in range(len(ds))]

    def no_processor(*args, **kwargs):
        raise ImportError("Qwen2VLVideoProcessor requires the Torchvision library")  # what transformers raises then

    monkeypatch.setattr(verl.utils, "hf_processor", no_processor)
    report = run_preflight([check])
    assert report.ok, report.render()
    rl = next(s for s in report.rl if s.split == "rl.parquet")
    assert rl.exact and rl.tokens == expected
    assert "~" not in report.render().split("note:")[0]  # the GRPO table (the note mentions SFT estimates)


def test_sft_passes_on_prepared_samples(tiny_model_dir: Path, prepared_dir: Path) -> None:
    report = run_preflight([StageCheck("sft", SFT, _overrides(tiny_model_dir, prepared_dir))])
    assert report.ok, report.render()
    (stats,) = report.sft
    assert stats.rows == stats.checked > 0 and min(stats.assistant_tokens) > 0 and max(stats.tokens) <= 4096


def test_a_split_smaller_than_one_batch_names_train_batch_size(tiny_model_dir: Path, prepared_dir: Path) -> None:
    """4 SFT rows at the recipe's batch 16: verl would train 0 steps; at batch 4 nothing is said."""
    small = run_preflight([StageCheck("sft", SFT, _overrides(tiny_model_dir, prepared_dir))])
    assert any("fewer than data.train_batch_size=16" in p.message and "sft.parquet" in p.message for p in small.problems), small.render()
    fits = run_preflight([StageCheck("sft", SFT, _overrides(tiny_model_dir, prepared_dir, "data.train_batch_size=4"))])
    assert not any("train_batch_size" in p.message for p in fits.problems), fits.render()


def test_overlong_prompts_name_max_prompt_length(tiny_model_dir: Path, prepared_dir: Path) -> None:
    report = run_preflight([_grpo(tiny_model_dir, prepared_dir, "data.max_prompt_length=64")])
    assert not report.ok
    assert "data.max_prompt_length=64" in _errors(report) and "filtered out" in _errors(report)


def test_sft_rows_longer_than_max_length_fail(tiny_model_dir: Path, prepared_dir: Path) -> None:
    report = run_preflight([StageCheck("sft", SFT, _overrides(tiny_model_dir, prepared_dir, "data.max_length=64"))])
    assert not report.ok and "data.max_length=64" in _errors(report)


def test_three_images_for_spatial_name_limit_images(tiny_model_dir: Path, prepared_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(prepared_dir / TASK, data / TASK)
    path = data / TASK / "rl.parquet"
    table = pq.read_table(path)
    rows = table.to_pylist()
    rows[0]["images"] = rows[0]["images"] + rows[0]["images"][:1]
    rows[0]["prompt"][0]["content"] = "<image>" + rows[0]["prompt"][0]["content"]
    pq.write_table(table.from_pylist(rows, schema=table.schema), path)
    report = run_preflight([_grpo(tiny_model_dir, data)])
    assert not report.ok
    assert "actor_rollout_ref.rollout.limit_images=2" in _errors(report) and "3 images" in _errors(report)


def test_missing_image_names_image_root(tiny_model_dir: Path, tmp_path: Path) -> None:
    from verl_reason_rft.data_prep.prepare import prepare
    from verl_reason_rft.data_prep.samples import generate_samples

    dataset = generate_samples(tmp_path / "ds", per_task=6, seed=1, tasks=[TASK], progress=False)
    prepare(dataset, tmp_path / "data", tasks=[TASK], sft_size=2, verbose=False)
    first = pq.read_table(tmp_path / "data" / TASK / "rl.parquet").to_pylist()[0]["images"][0]["image"]
    Path(first).unlink()
    report = run_preflight([_grpo(tiny_model_dir, tmp_path / "data")])
    assert not report.ok
    assert "data.image_root" in _errors(report) and Path(first).name in _errors(report)


def test_cli_exit_code_and_table(tiny_model_dir: Path, prepared_dir: Path, capsys) -> None:
    assert main(["preflight", "--config-name", GRPO, *_overrides(tiny_model_dir, prepared_dir, "data.max_prompt_length=64")]) == 1
    out = capsys.readouterr().out
    assert "max_prompt_length" in out and "preflight: FAILED" in out
    assert main(["preflight", "--config-name", GRPO, *_grpo(tiny_model_dir, prepared_dir).overrides]) == 0
    assert "preflight: OK" in capsys.readouterr().out


def test_missing_data_dir_is_named(tiny_model_dir: Path) -> None:
    report = run_preflight([StageCheck("grpo", GRPO, ("model=tiny", f"model.path={tiny_model_dir}"))])
    assert not report.ok and "data_dir" in _errors(report)
