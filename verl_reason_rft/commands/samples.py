"""PLACEHOLDER for `reason-rft samples` (being implemented). Keep imports light: heavy ones go inside run()."""


def add_arguments(parser):
    pass


def run(args) -> int:
    raise NotImplementedError("reason-rft samples")
