"""The refiners' stages, one module each (found by curate.core.stage_api: every module here is imported)."""
