"""Dependencies run one way, ldm <- cldm <- eyeoct: every ldm module imports with cldm and eyeoct
unimportable, every cldm module with eyeoct unimportable."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

BLOCKED_IMPORT = textwrap.dedent("""
    import importlib, pkgutil, sys

    blocked, package = {blocked!r}, {package!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ImportError(f"{{name}} imported while testing {{package}}")
            return None

    sys.meta_path.insert(0, Blocker())
    root = importlib.import_module(package)
    names = [package] + [m.name for m in pkgutil.walk_packages(root.__path__, package + ".")]
    for name in names:
        importlib.import_module(name)
    print(len(names))
""")


def modules_of(package: str) -> list[str]:
    return sorted(p.relative_to(REPO).with_suffix("").as_posix().replace("/", ".").removesuffix(".__init__")
                  for p in (REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package, blocked", [("ldm", ("cldm", "eyeoct")), ("cldm", ("eyeoct",))])
def test_package_imports_without_the_packages_above_it(package, blocked):
    code = BLOCKED_IMPORT.format(blocked=blocked, package=package)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[-1]) == len(modules_of(package))
