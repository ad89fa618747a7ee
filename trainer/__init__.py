"""traindx trainer: a Hydra app whose one training loop writes per-epoch diagnostics.

`python -m trainer [overrides]`; the loop itself is `trainer.loop.train(cfg, run_dir)`.
"""

__version__ = "0.1.0"
