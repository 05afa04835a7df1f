"""The filter stages, one module per stage: its options model, its step and its registration.

`curate.core.stage_api.builtin_stage_modules()` imports every module here whose name does not start
with `_`; `_batch.py` is the base step the batched annotators share, not a stage.
"""
