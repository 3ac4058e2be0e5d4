"""Where a run's model comes from, checked once before any work: a local folder, the HF cache, or the Hub.

A missing ``--model-path`` folder would otherwise reach transformers as a repo id ("Repo id must be
in the form ..."), and a Hub id on a machine without network would spend minutes in retries.
"""

from __future__ import annotations

import os
import socket
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

import yaml

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 5.0


class ModelSourceError(ValueError):
    """The model cannot be found or fetched; the message names the option or variable to change."""


def recipe_model_id(model: str) -> str | None:
    """The ``path`` of the recipe's model option (``recipes/model/<model>.yaml``): a Hub id, or None."""
    text = resources.files("verl_reason_rft.recipes").joinpath("model", f"{model}.yaml").read_text(encoding="utf-8")
    path = (yaml.safe_load(text) or {}).get("path")
    return str(path) if path else None


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=hub_cache_dir())
    return isinstance(found, str)


def _reach(endpoint: str) -> str | None:
    """None when a TCP connection to ``endpoint`` opens within the timeout, else the reason."""
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=PROBE_TIMEOUT_S):
            return None
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def check_model_source(model: str, model_path: str | None) -> None:
    """Raise :class:`ModelSourceError` when the model is neither local, cached, nor downloadable now."""
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not path.exists():
            raise ModelSourceError(f"--model-path {model_path}: the folder does not exist")
        if not path.is_dir():
            raise ModelSourceError(f"--model-path {model_path}: not a folder (give the model's folder, with config.json)")
        if not (path / "config.json").is_file():
            raise ModelSourceError(f"--model-path {model_path}: no config.json in it (not a Hugging Face model folder)")
        return
    repo_id = recipe_model_id(model)
    if repo_id is None:
        return  # tiny: built locally by the caller
    if _cached(repo_id):
        return
    if hub_offline():
        raise ModelSourceError(f"--model {model}: {repo_id} is not in the Hugging Face cache ({hub_cache_dir()}) and HF_HUB_OFFLINE "
                               f"is set: download it first (huggingface-cli download {repo_id}) or pass --model-path DIR")
    endpoint = os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    reason = _reach(endpoint)
    if reason is not None:
        raise ModelSourceError(f"--model {model}: {repo_id} is not in the Hugging Face cache ({hub_cache_dir()}) and {endpoint} "
                               f"cannot be reached ({reason}): pass --model-path DIR with a local copy, or download it where "
                               f"there is network and set HF_HUB_OFFLINE=1")
