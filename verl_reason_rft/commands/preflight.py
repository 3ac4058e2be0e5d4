"""PLACEHOLDER for `reason-rft preflight` (being implemented). Keep imports light: heavy ones go inside run()."""


def add_arguments(parser):
    pass


def run(args) -> int:
    raise NotImplementedError("reason-rft preflight")
