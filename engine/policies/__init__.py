"""Policies: checkpoints in (native `foldgate.policy/1`, SB3 zips, plain torch
state_dicts), validated into `Policy`, cached as plain-data `.fgp` entries; `engine.policy` is the public path."""
