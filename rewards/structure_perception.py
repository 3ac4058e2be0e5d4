"""Built-in task: structure perception (GeoMath in-domain, Geometry3K out-of-domain)."""

from verl_reason_rft.hookspecs import hookimpl
from verl_reason_rft.rewards import answer_match
from verl_reason_rft.rewards._prompts import templates
from verl_reason_rft.task_spec import TaskSpec

TASK = TaskSpec(
    name="structure_perception",
    data_sources=("geomath", "geometry3k"),
    compute_score=answer_match.compute_score,
    score_prediction=answer_match.score_prediction,
    prompts=templates("structure_perception"),
    train_file="A2-Structure-Perception-train-4k5-cot.json",
    test_files={
        "Structure-Perception-id-test-820.json": "geomath",
        "Structure-Perception-ood-test-800.json": "geometry3k",
    },
    images_per_sample=1,
    choice_answers=frozenset("ABCD"),
    accuracy_modes=answer_match.ACCURACY_MODES,
    # Only 4.5k records exist: stage-2 GRPO trains on all of them (SPEC §4).
    rl_uses_all_records=True,
)


@hookimpl
def reason_rft_tasks() -> list[TaskSpec]:
    return [TASK]
