"""The hall is a department's app, deployable without govcloud: its package imports nothing of
the project around it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

APPS = Path(__file__).resolve().parents[2] / "clusters" / "apps"

#: the project's own top-level packages, none of which the hall may import
PROJECT = ("govcloud", "infra", "security", "clusters", "loadtests", "bench", "tests", "toolchain")

# Run with -I -S: no PYTHONPATH, no current directory, no .pth files (so not the editable
# install's finder, which maps the project's packages onto the repository). The path is the
# standard library, the hall's third-party packages (site-packages) and clusters/apps; a finder
# placed first refuses every project package, so even an import that could otherwise be
# resolved fails, naming itself.
PROBE = """
import importlib, json, pkgutil, sys

apps, *site = sys.argv[1:]
PROJECT = {project!r}


class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in PROJECT:
            raise ImportError(f"the hall imports {{name}}, a package of the project around it")
        return None


sys.meta_path.insert(0, Refuse())
sys.path[:0] = [apps]
sys.path += site
import hall

names = ["hall"]
for info in pkgutil.walk_packages(hall.__path__, "hall."):
    importlib.import_module(info.name)
    names.append(info.name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in PROJECT)
print(json.dumps({{"modules": names, "leaked": leaked, "file": hall.__file__}}))
"""


def probe(apps: Path) -> subprocess.CompletedProcess[str]:
    """Import every module of ``apps``/hall in a fresh interpreter, as described above."""
    paths = sysconfig.get_paths()
    site = sorted({paths["purelib"], paths["platlib"]})
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE.format(project=PROJECT), str(apps), *site],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )


def test_every_hall_module_imports_with_only_clusters_apps_on_the_path() -> None:
    result = probe(APPS)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["file"] == str(APPS / "hall" / "__init__.py")
    assert doc["leaked"] == []
    found = {p.stem for p in (APPS / "hall").glob("*.py")} - {"__init__"}
    assert set(doc["modules"]) == {"hall"} | {f"hall.{name}" for name in found}


def test_the_probe_catches_an_import_of_govcloud(tmp_path: Path) -> None:
    """The same probe over a copy of the package with one govcloud import fails, naming it."""
    shutil.copytree(APPS / "hall", tmp_path / "hall")
    leaky = tmp_path / "hall" / "leaky.py"
    leaky.write_text("from govcloud.errors import OperationError\n", encoding="utf-8")
    result = probe(tmp_path)
    assert result.returncode != 0
    assert "ImportError: the hall imports govcloud," in result.stderr


def test_govcloud_reports_the_dev_servers_error_as_an_operation_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`govcloud loadtest run --target local` still ends with a clean error and exit 1 when no
    PostgreSQL server is installed, although the hall raises its own error type."""
    from clusters.apps.hall import devserver
    from govcloud.errors import OperationError
    from govcloud.spec import load_spec
    from govcloud.spec.load import LAB_SPEC
    from loadtests.run import local_hall

    def no_postgres(self: devserver.LocalPostgres) -> devserver.LocalPostgres:
        shutil.rmtree(self.root)
        raise devserver.DevServerError("PostgreSQL server not found")

    monkeypatch.setattr(devserver.LocalPostgres, "start", no_postgres)
    with (
        pytest.raises(OperationError, match="PostgreSQL server not found"),
        local_hall(load_spec(LAB_SPEC), {}, lambda _: None),
    ):
        pass
