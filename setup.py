"""verl-reason-rft: Reason-RFT (arXiv 2503.20752) as a plugin for verl 0.9.1.

The folders ``rewards/``, ``recipes/`` and ``data_prep/`` install *inside* the
``verl_reason_rft`` namespace (``verl_reason_rft.rewards`` ...): PyPI already has
unrelated top-level ``rewards`` and ``recipes`` packages.
"""

from setuptools import setup

PACKAGES = {
    "verl_reason_rft": "verl_reason_rft",
    "verl_reason_rft.commands": "verl_reason_rft/commands",
    "verl_reason_rft.cpu": "verl_reason_rft/cpu",
    "verl_reason_rft.data": "verl_reason_rft/data",
    "verl_reason_rft.rewards": "rewards",
    "verl_reason_rft.data_prep": "data_prep",
    "verl_reason_rft.recipes": "recipes",
    "verl_reason_rft.recipes.task": "recipes/task",
    "verl_reason_rft.recipes.model": "recipes/model",
    "verl_reason_rft.recipes.variant": "recipes/variant",
    "verl_reason_rft.recipes.cpu": "recipes/cpu",
}

setup(
    name="verl-reason-rft",
    version="0.1.0",
    description="Reason-RFT visual reasoning (CoT-SFT then GRPO) as a plugin for verl",
    python_requires=">=3.10",
    packages=list(PACKAGES),
    package_dir=PACKAGES,
    package_data={"verl_reason_rft.recipes": ["*.yaml", "*/*.yaml"], "verl_reason_rft.rewards": ["*.yaml"]},
    install_requires=[
        # verl's extension points (verl.plugins entry points, the reward-loop manager registry,
        # the reward.* keys, sft_trainer_engine) are those of 0.9.x; 0.9.1 is the version every
        # test here runs against, and verl changes these internals between minor releases.
        "verl[verl-core]==0.9.1",
        "pluggy>=1.3",
        "math-verify>=0.7",
        "pyarrow",
        "pillow",
        "pyyaml",
        "tqdm",
        "matplotlib",
    ],
    extras_require={
        # setuptools>=70.1 builds wheels without the `wheel` package: tests/verl_integration/test_install.py
        # builds one offline with the running environment's setuptools (a fresh venv has 65.x)
        # transformers 5.9.0: the version verl 0.9.1's GPU stack (its `vllm` extra) pins, so CI tests what GPU users run
        "test": ["pytest>=8", "pytest-asyncio", "hypothesis>=6", "setuptools>=70.1", "transformers==5.9.0"],
        # Training machines only; never installed in CI (CUDA wheels). verl 0.9.1's own tested GPU stack:
        # its `vllm` extra pins vllm 0.24.0, torch 2.11.0, torchvision 0.26.0, transformers 5.9.0.
        # flash-attn is a separate step (its sdist imports torch at build time): see the README.
        "gpu": ["verl[vllm]==0.9.1"],
    },
    entry_points={
        "console_scripts": ["reason-rft = verl_reason_rft.cli:main"],
        # verl imports this group in every process (driver, TaskRunner, Ray workers).
        "verl.plugins": ["reason_rft = verl_reason_rft.verl_plugin"],
        # Our own task-plugin group: built-ins are registered exactly like third-party tasks.
        "reason_rft.tasks": [
            "visual_counting = verl_reason_rft.rewards.visual_counting",
            "structure_perception = verl_reason_rft.rewards.structure_perception",
            "spatial_transformation = verl_reason_rft.rewards.spatial_transformation",
        ],
    },
)
