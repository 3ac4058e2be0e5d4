"""``trainer_mode=reason_rft`` resolves where verl looks it up, without ``VERL_USE_EXTERNAL_MODULES``.

Each check runs a fresh interpreter (``probe_fresh_process``): ``import verl`` loads our entry point as
every Ray process does, then ``get_trainer_cls`` is looked up as main_ppo's TaskRunner does.
"""

from __future__ import annotations

from verl_reason_rft.trainer_registration import probe_fresh_process


def test_resolves_in_a_fresh_process_without_the_env_var_and_only_once_the_registry_is_imported():
    ok, detail = probe_fresh_process("reason_rft")
    assert ok, detail
    resolved, _, early = detail.removeprefix("RESOLVED ").partition(" EARLY ")
    assert resolved == "verl_reason_rft.trainer.ReasonRFTTrainer"
    assert early.strip() == ""  # `import verl` alone (a vLLM or reward worker) does not import our trainer


def test_fails_with_verls_message_when_the_plugin_is_disabled():
    ok, detail = probe_fresh_process("reason_rft", {"VERL_USE_EXTERNAL_PLUGINS": "none"})
    assert not ok and "Unknown trainer 'reason_rft'" in detail


def test_preflight_names_the_fix_when_the_runtime_env_disables_the_plugin():
    from verl_reason_rft.preflight import _check_trainer_mode
    from verl_reason_rft.recipe_config import ZERO, compose_recipe

    cfg = compose_recipe(ZERO, ["data_dir=/d", "+ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_PLUGINS=none"])
    (problem,) = _check_trainer_mode(cfg, "grpo")
    assert "VERL_USE_EXTERNAL_PLUGINS='none'" in problem.message and "trainer.v1.trainer_mode=sync" in problem.message
    assert _check_trainer_mode(compose_recipe(ZERO, ["data_dir=/d"]), "grpo") == []  # no env var needed
