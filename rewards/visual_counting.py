"""Built-in task: visual counting (CLEVR-Math in-domain, Super-CLEVR out-of-domain)."""

from verl_reason_rft.hookspecs import hookimpl
from verl_reason_rft.rewards import answer_match
from verl_reason_rft.rewards._prompts import templates
from verl_reason_rft.task_spec import TaskSpec

TASK = TaskSpec(
    name="visual_counting",
    data_sources=("clevr_math", "super_clevr"),
    compute_score=answer_match.compute_score,
    score_prediction=answer_match.score_prediction,
    prompts=templates("visual_counting"),
    train_file="A3-Visual-Counting-train-35k-cot.json",
    test_files={
        "Visual-Counting-id-test-1k.json": "clevr_math",
        "Visual-Counting-ood-test-1k.json": "super_clevr",
    },
    images_per_sample=1,
    accuracy_modes=answer_match.ACCURACY_MODES,
)


@hookimpl
def reason_rft_tasks() -> list[TaskSpec]:
    return [TASK]
