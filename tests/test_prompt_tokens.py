"""prompt_tokens: the exact prompt count equals the processor's ``len(input_ids)`` on random images."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from PIL import Image

from verl_reason_rft.prompt_tokens import PromptCounter, UnsupportedProcessor, VisionRule, fetch_resize, verl_prompt_tokens
from verl_reason_rft.tiny_model import processor_available

needs_processor = pytest.mark.skipif(not processor_available(), reason="the reference count runs the Qwen2-VL processor (torchvision)")

sides = st.integers(min_value=8, max_value=1600)
limits = st.one_of(st.none(), st.integers(min_value=3_136, max_value=1_500_000))


@settings(deadline=None)
@given(height=sides, width=sides, min_pixels=limits, max_pixels=limits, patch=st.sampled_from([14, 16]))
def test_fetch_resize_is_qwen_vl_utils_smart_resize(height, width, min_pixels, max_pixels, patch) -> None:
    qwen = pytest.importorskip("qwen_vl_utils.vision_process")
    factor = patch * 2

    def outcome(resize):
        try:
            return resize(height, width, factor, min_pixels, max_pixels)
        except (AssertionError, ValueError):  # max < min: qwen asserts, we raise (either way the row fails)
            return "error"

    assert outcome(fetch_resize) == outcome(qwen.smart_resize)


class _Rows:
    """A verl ``RLHFDataset`` (our subclass, unfiltered) over a one-row parquet, rebuilt per example."""

    def __init__(self, model: Path, processor, root: Path) -> None:
        self.model, self.processor, self.root = model, processor, root
        self.made = 0

    def dataset(self, sizes, pixels, text: str):
        import pyarrow as pa
        import pyarrow.parquet as pq
        from verl.trainer.ppo.utils import create_rl_dataset

        self.made += 1  # fresh file names: datasets' cache must never serve an earlier example
        images = []
        for k, size in enumerate(sizes):
            path = self.root / f"img{self.made}_{k}.png"
            Image.new("RGB", size, (10 * k, 90, 200)).save(path)
            images.append({"image": str(path)})
        row = {"prompt": [{"role": "user", "content": "<image>" * len(sizes) + text}], "images": images, "data_source": "x"}
        file = self.root / f"rows{self.made}.parquet"
        pq.write_table(pa.Table.from_pylist([row]), file)
        config = OmegaConf.create({
            "filter_overlong_prompts": False, "cache_dir": str(self.root / "cache"), "max_pixels": pixels[0], "min_pixels": pixels[1],
            "custom_cls": {"path": "pkg://verl_reason_rft.data.rl_dataset", "name": "ReasonRFTRLDataset"},
        })
        return create_rl_dataset([str(file)], config, self.processor.tokenizer, self.processor)


@pytest.fixture(params=["tiny_model_dir", "qwen25_model_dir"])
def rows(request, tmp_path_factory) -> _Rows:
    from verl.utils import hf_processor

    if not processor_available():
        pytest.skip("the reference count runs the Qwen2-VL processor (torchvision)")
    model = request.getfixturevalue(request.param)
    return _Rows(model, hf_processor(str(model)), tmp_path_factory.mktemp("rows"))


image_size = st.tuples(st.integers(min_value=4, max_value=1400), st.integers(min_value=4, max_value=1400)).filter(
    lambda s: max(s) / min(s) <= 150
)
entry_pixels = st.one_of(
    st.just((480_000, 3_136)), st.just((None, None)),
    st.tuples(st.integers(min_value=20_000, max_value=900_000), st.integers(min_value=3_136, max_value=20_000)),
)


@needs_processor
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(image_size, min_size=1, max_size=2), pixels=entry_pixels, text=st.sampled_from(["How many cubes?", " x  <answer>", ""]))
def test_count_equals_processor_input_ids_on_random_images(rows, sizes, pixels, text) -> None:
    ds = rows.dataset(sizes, pixels, text)
    ours = PromptCounter.for_dataset(ds).measure([ds._build_messages(ds.dataframe[0], key=ds.prompt_key)])
    from_files = PromptCounter.for_model(str(rows.model), rows.processor.tokenizer, ds)
    try:
        expected = verl_prompt_tokens(ds, ds.dataframe[0])
    except Exception:  # noqa: BLE001 - e.g. a thin image that resizes to zero pixels: verl's filter drops the row
        assert ours.lengths == [None] and len(ours.failures) == 1
        return
    assert ours.lengths == [expected]
    assert from_files.count(ds._build_messages(ds.dataframe[0], key=ds.prompt_key)) == ours.lengths[0]


@needs_processor
def test_count_and_add_equals_tokenizing_the_expanded_text(rows) -> None:
    """The shortcut (tokens of the rendered text + n-1 per image) against tokenizing the expanded text."""
    ds = rows.dataset([(300, 200), (64, 900)], (480_000, 3_136), "Compare the two images.")
    messages = ds._build_messages(ds.dataframe[0], key=ds.prompt_key)
    counter = PromptCounter.for_dataset(ds)
    assert counter.pad_is_added
    expanded = PromptCounter.for_dataset(ds)
    expanded.pad_is_added = False
    assert counter.count(messages) == expanded.count(messages) == verl_prompt_tokens(ds, ds.dataframe[0])


def test_rule_reads_both_processor_config_styles(tiny_model_dir, qwen25_model_dir) -> None:
    assert VisionRule.from_model(str(tiny_model_dir)) == VisionRule(14, 2, 3_136, 1_003_520)  # transformers 5: processor_config.json
    assert VisionRule.from_model(str(qwen25_model_dir)) == VisionRule(14, 2, 12_544, 200_704)  # Qwen2.5-VL: preprocessor_config.json
    if processor_available():
        from verl.utils import hf_processor

        for model in (tiny_model_dir, qwen25_model_dir):
            assert VisionRule.from_model(str(model)) == VisionRule.from_image_processor(hf_processor(str(model)).image_processor)


def test_unknown_processors_and_kwargs_are_refused(tmp_path) -> None:
    (tmp_path / "preprocessor_config.json").write_text('{"image_processor_type": "SiglipImageProcessor"}')
    with pytest.raises(UnsupportedProcessor, match="SiglipImageProcessor"):
        VisionRule.from_model(str(tmp_path))
    with pytest.raises(UnsupportedProcessor, match="no image-processor config"):
        VisionRule.from_model(str(tmp_path / "empty"))
    with pytest.raises(UnsupportedProcessor, match="do_pad"):
        VisionRule().with_processor_kwargs({"do_pad": True})
    assert VisionRule().with_processor_kwargs({"min_pixels": 100, "max_pixels": 5000}) == VisionRule(min_pixels=100, max_pixels=5000)
    assert VisionRule().with_processor_kwargs({"max_pixels": 5000}) == VisionRule()  # the processor needs both
