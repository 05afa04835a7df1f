"""`curate preview`: run a config on a seeded sample of its input and project the full run from it.

sample.py draws the sample (only the sampled part is read where the format allows), measure.py runs
the config on it locally, project.py turns the measurements into counts and costs for the whole input.
"""
