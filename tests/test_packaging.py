"""A wheel holds only the packages pyproject.toml lists (the package-dir mapping of plugins/
onto odepipe_plugins rules out automatic discovery), while an editable install finds every
folder: a sub-package missing from the list works in development and breaks ``pip install``.
This compares the list with the source tree, and builds the wheel to check what it holds."""
import subprocess
import sys
import zipfile
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python < 3.11: the test extra installs tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _config():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _source_packages():
    dirs = _config()["package-dir"]
    found = set()
    for name, folder in dirs.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base).parts
            found.add(".".join((name, *rel)))
    return found


def test_every_package_of_the_source_tree_is_listed():
    assert _source_packages() - set(_config()["packages"]) == set()


def test_the_wheel_holds_every_module_and_the_shipped_model(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", str(ROOT), "-w", str(tmp_path)], check=True,
                   capture_output=True)
    (wheel,) = tmp_path.glob("odepipe-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    dirs = _config()["package-dir"]
    for name, folder in dirs.items():
        for module in (ROOT / folder).rglob("*.py"):
            rel = module.relative_to(ROOT / folder)
            if "__pycache__" in rel.parts:
                continue
            path = "/".join((*name.split("."), *rel.parts))
            assert path in names, f"{path} is not in the wheel"
    assert any(n.startswith("odepipe_plugins/text/pretrained/") and n.endswith(".pt")
               for n in names)
    assert "odepipe/recipes/spiral.yaml" in names
