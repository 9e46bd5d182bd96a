"""A Lambda function's code, imported in this process the way the Lambda runtime imports it.

Lambda puts the unpacked code package (the task root) first on sys.path and imports the handler's
module by its plain name, so the module's siblings import flat (`import checks`). Here every load
is fresh, like a cold start, and leaves sys.path and sys.modules as they were: two functions whose
packages hold modules of the same name, or two deployments of one function, never share one.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_lambda_modules(task_root: Path, module: str, *, name: str) -> dict[str, ModuleType]:
    """Import `<task_root>/<module>.py` (registered as `name`) with `task_root` on sys.path; return it
    under `module` and the task root's modules it imported, each under its own name."""
    path = task_root / f"{module}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None or not path.is_file():
        raise FileNotFoundError(f"Lambda handler module {path} not found")
    siblings = {sibling.stem for sibling in task_root.glob("*.py")} - {module}
    shadowed = {sibling: sys.modules.pop(sibling) for sibling in siblings if sibling in sys.modules}
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded  # dataclasses in the handler look their module up here
    sys.path.insert(0, str(task_root))
    try:
        spec.loader.exec_module(loaded)
        imported = {sibling: sys.modules[sibling] for sibling in sorted(siblings) if sibling in sys.modules}
    finally:
        sys.path.remove(str(task_root))
        for sibling in siblings:
            sys.modules.pop(sibling, None)
        sys.modules.update(shadowed)
    return {module: loaded, **imported}
