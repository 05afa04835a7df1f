"""Stages from the user's own code: a config's `plugins:` list and the `curate.stages` entry-point group.

A plugin is a module whose import registers stages (`@register_stage`). `plugins:` names modules
(`my_company.curate_stages`) or single `.py` files (`stages/punctuation.py`, relative to the config
file). A file is imported as the top-level module named by its stem with its folder put first on
`sys.path`, so that worker processes find it the same way: local workers inherit `sys.path`, Slurm
jobs and Ray workers get the folder on `PYTHONPATH` (see `worker_pythonpath`). Installed packages
declare an entry point in the group `curate.stages` (`[project.entry-points."curate.stages"]
punctuation = "my_pkg.stages"`); those load with the built-in stages, everywhere.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from pathlib import Path

from .errors import ConfigError

ENTRY_POINT_GROUP = "curate.stages"
_FILE_FOLDERS: list[str] = []  # folders of file plugins loaded in this process (for workers' PYTHONPATH)


def load_plugin(spec: str, key: str = "plugins") -> str:
    """Import one plugin (a module name or a `.py` path); returns the module name. ConfigError names the key."""
    if spec.endswith(".py") or os.sep in spec or "/" in spec:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"{key}: plugin file {spec!r} not found (a .py file, relative to the config file, "
                "or an importable module name)"
            )
        folder, name = str(path.resolve().parent), path.stem
        if folder not in sys.path:
            sys.path.insert(0, folder)
        if folder not in _FILE_FOLDERS:
            _FILE_FOLDERS.append(folder)
        loaded = sys.modules.get(name)
        if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() != path.resolve():
            raise ConfigError(
                f"{key}: plugin file {spec!r} is named like the module {name!r} already imported "
                f"from {getattr(loaded, '__file__', '?')}; rename the file"
            )
    else:
        name = spec
    try:
        importlib.import_module(name)
    except ConfigError:
        raise
    except Exception as e:  # the plugin's own import error: say which plugin and what went wrong
        raise ConfigError(f"{key}: cannot import plugin {spec!r}: {type(e).__name__}: {e}") from None
    return name


def load_plugins(specs: list[str], key: str = "plugins") -> list[str]:
    return [load_plugin(s, f"{key}[{i}]") for i, s in enumerate(specs)]


def load_entry_points() -> list[str]:
    """Import every module of the `curate.stages` entry-point group (installed plugin packages)."""
    names = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as e:
            raise ConfigError(
                f"installed plugin {ep.name!r} ({ep.value}, entry point group {ENTRY_POINT_GROUP!r}) "
                f"cannot be imported: {type(e).__name__}: {e}"
            ) from None
        names.append(ep.value)
    return names


def worker_pythonpath() -> str | None:
    """PYTHONPATH for worker processes that start fresh (Slurm, Ray): file plugins' folders first."""
    if not _FILE_FOLDERS:
        return None
    rest = os.environ.get("PYTHONPATH")
    return os.pathsep.join(_FILE_FOLDERS + ([rest] if rest else []))
