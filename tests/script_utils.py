"""A fresh module object of a script in scripts/ (they are files, not a package), for tests that call its
functions or main() directly."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str) -> ModuleType:
    """scripts/<name>.py executed into a new module (not cached in sys.modules, so monkeypatching one test's
    copy leaves the next test's alone)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
