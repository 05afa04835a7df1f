"""An example curate plugin package: its stages register when curate loads the `curate.stages` entry points."""
