"""Policies: checkpoints in (native `foldgate.policy/1`, SB3 zips, plain torch
state_dicts), validated into `Policy`, cached as `.npz`; `engine.policy` is the public path."""
