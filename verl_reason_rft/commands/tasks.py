"""PLACEHOLDER for `reason-rft tasks` (being implemented). Keep imports light: heavy ones go inside run()."""


def add_arguments(parser):
    pass


def run(args) -> int:
    raise NotImplementedError("reason-rft tasks")
