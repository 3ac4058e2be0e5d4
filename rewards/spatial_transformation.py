"""Built-in task: spatial transformation (TRANCE; two images per prompt, initial then final)."""

from verl_reason_rft.hookspecs import hookimpl
from verl_reason_rft.rewards import transformation_calls
from verl_reason_rft.rewards._prompts import templates
from verl_reason_rft.task_spec import TaskSpec

TASK = TaskSpec(
    name="spatial_transformation",
    data_sources=("trance", "trance_left", "trance_right"),
    compute_score=transformation_calls.compute_score,
    score_prediction=transformation_calls.score_prediction,
    prompts=templates("spatial_transformation"),
    train_file="A1-Spatial-Transformation-train-60k-cot.json",
    test_files={
        "Spatial-Transformation-id-test-1k.json": "trance",
        "Spatial-Transformation-ood-left-test-1k.json": "trance_left",
        "Spatial-Transformation-ood-right-test-1k.json": "trance_right",
    },
    images_per_sample=2,
    accuracy_modes=transformation_calls.ACCURACY_MODES,
)


@hookimpl
def reason_rft_tasks() -> list[TaskSpec]:
    return [TASK]
