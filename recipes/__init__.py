"""Hydra recipes: use with --config-path=pkg://verl_reason_rft.recipes."""
