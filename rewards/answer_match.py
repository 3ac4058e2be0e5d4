"""PLACEHOLDER: being implemented (SPEC §6-§7)."""


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    raise NotImplementedError


def score_prediction(data_source, prediction, answer, mode="paper"):
    raise NotImplementedError
