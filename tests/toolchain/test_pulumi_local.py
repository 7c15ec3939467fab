"""The Pulumi engine built by `make tools`, on the local file backend: a Python program with a
dynamic resource (how govcloud's providers work), config, a secret, `up`, outputs, `destroy`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from govcloud.errors import OperationError
from govcloud.toolchain.pulumi import LocalBackend
from govcloud.toolchain.tools import locate
from govcloud.toolchain.versions import load_versions

pytestmark = [pytest.mark.integration, pytest.mark.slow]

VENV = Path(sys.executable).parent.parent

PROGRAM = """
import os

import pulumi
from pulumi.dynamic import CreateResult, Resource, ResourceProvider


class FileProvider(ResourceProvider):
    def create(self, props):
        with open(props["path"], "w") as f:
            f.write(props["content"])
        return CreateResult(id_=props["path"], outs=props)

    def delete(self, id, props):
        os.remove(id)


class File(Resource):
    def __init__(self, name, path, content):
        super().__init__(FileProvider(), name, {"path": path, "content": content})


cfg = pulumi.Config()
f = File("greeting", cfg.require("path"), "hello " + cfg.require("who"))
pulumi.export("path", f.id)
pulumi.export("greeting", "hello " + cfg.require("who"))
pulumi.export("token_length", cfg.require_secret("token").apply(len))
pulumi.export("token", cfg.require_secret("token"))
"""


@pytest.fixture(scope="module")
def tools_present() -> None:
    for name in ("pulumi", "pulumi-language-python"):
        try:
            locate(name)
        except OperationError as exc:
            pytest.fail(str(exc), pytrace=False)


def test_pulumi_version_is_the_recorded_one(tools_present: None, tmp_path: Path) -> None:
    out = LocalBackend(tmp_path / "state").run(["version"]).stdout.strip()
    assert out == "v" + load_versions()["PULUMI_VERSION"]


def test_up_outputs_secrets_and_destroy(tools_present: None, tmp_path: Path) -> None:
    project = tmp_path / "smoke"
    project.mkdir()
    (project / "Pulumi.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "smoke",
                "runtime": {"name": "python", "options": {"virtualenv": str(VENV)}},
            }
        )
    )
    (project / "__main__.py").write_text(PROGRAM)
    target = tmp_path / "out.txt"
    backend = LocalBackend(tmp_path / "state")

    assert "Logged in" in backend.login()
    backend.run(["stack", "init", "dev"], cwd=project)
    backend.run(["config", "set", "who", "world"], cwd=project)
    backend.run(["config", "set", "path", str(target)], cwd=project)
    backend.run(["config", "set", "--secret", "token", "s3cr3t-value"], cwd=project)

    # The secret is stored encrypted with the generated passphrase, never in clear.
    stack_file = (project / "Pulumi.dev.yaml").read_text()
    assert "s3cr3t-value" not in stack_file and "secure:" in stack_file
    assert "encryptionsalt" in stack_file

    up = backend.run(["up", "--yes", "--non-interactive", "--skip-preview"], cwd=project)
    assert "+ 2 created" in up.stdout or "2 created" in up.stdout, up.stdout
    assert target.read_text() == "hello world"

    outs = json.loads(
        backend.run(["stack", "output", "--json", "--show-secrets"], cwd=project).stdout
    )
    assert outs == {
        "path": str(target),
        "greeting": "hello world",
        "token_length": 12,
        "token": "s3cr3t-value",
    }
    hidden = json.loads(backend.run(["stack", "output", "--json"], cwd=project).stdout)
    assert hidden["token"] == "[secret]"

    # State lives in the project's file backend, with the secret encrypted there too.
    checkpoint = backend.backend_dir / ".pulumi" / "stacks" / "smoke" / "dev.json"
    assert checkpoint.exists()
    assert "s3cr3t-value" not in checkpoint.read_text()

    # A second `up` changes nothing.
    again = backend.run(["up", "--yes", "--non-interactive", "--skip-preview"], cwd=project)
    assert "2 unchanged" in again.stdout, again.stdout

    backend.run(["destroy", "--yes", "--non-interactive", "--skip-preview"], cwd=project)
    assert not target.exists()


def test_a_wrong_passphrase_cannot_read_secrets(tools_present: None, tmp_path: Path) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: p\nruntime: python\n")
    backend = LocalBackend(tmp_path / "state")
    backend.run(["stack", "init", "dev"], cwd=project)
    backend.run(["config", "set", "--secret", "k", "v"], cwd=project)
    backend.passphrase_file.write_text("not-the-passphrase\n")
    r = backend.run(["config", "get", "k"], cwd=project, check=False)
    assert r.returncode != 0
    assert "passphrase" in (r.stdout + r.stderr).lower()
