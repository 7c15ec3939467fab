"""The versions file: parsing, and agreement with the build modules and the SDK pin."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from govcloud.errors import InputError
from govcloud.toolchain.versions import (
    REQUIRED_KEYS,
    at_least,
    load_versions,
    parse_version,
    parse_versions,
    versions_file,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
GOOD = "\n".join(f"{k}=1.2.3" for k in REQUIRED_KEYS)


def test_the_real_file_parses_with_every_key() -> None:
    v = load_versions()
    assert versions_file() == ROOT / "toolchain" / "versions.env"
    assert set(REQUIRED_KEYS) <= set(v)
    assert all(parse_version(x) for x in v.values())


def test_comments_and_blank_lines_are_skipped() -> None:
    v = parse_versions("# a comment\n\n" + GOOD + "\n  # another\n")
    assert v["PULUMI_VERSION"] == "1.2.3"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (GOOD + "\nPULUMI_VERSION=1.2.4", "PULUMI_VERSION is set twice"),
        (GOOD + "\nnot a line", "expected KEY=VERSION"),
        (GOOD + "\nEXTRA=latest", "'latest' is not N.N.N"),
        (GOOD.replace("ETCD_MIN=1.2.3", ""), "ETCD_MIN: missing"),
        ("", "the file is empty"),
    ],
)
def test_bad_files_are_refused_with_the_line(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as exc:
        parse_versions(text, source="v.env")
    assert fragment in str(exc.value)
    assert exc.value.exit_code == 2


def test_unreadable_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the tool versions file"):
        load_versions(tmp_path / "nope.env")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("v3.259.0", (3, 259, 0)),
        ("Kubernetes v1.36.3", (1, 36, 3)),
        ("etcd Version: 3.6.8\nGit SHA: GitNotFound", (3, 6, 8)),
        ("Client Version: v1.32.4-dispatcher\nKustomize Version: v5.5.0", (1, 32, 4)),
        ("no version here", None),
    ],
)
def test_parse_version_takes_the_first_triple(
    output: str, expected: tuple[int, int, int] | None
) -> None:
    assert parse_version(output) == expected


def test_at_least() -> None:
    assert at_least((1, 36, 3), "1.36.0")
    assert not at_least((1, 32, 4), "1.35.0")
    assert not at_least(None, "0.0.1")
    with pytest.raises(ValueError):
        at_least((1, 0, 0), "latest")


def test_build_modules_require_the_recorded_versions() -> None:
    v = load_versions()
    tc = ROOT / "toolchain"
    pins = {
        ("pulumi", "github.com/pulumi/pulumi/pkg/v3"): v["PULUMI_VERSION"],
        ("pulumi", "github.com/pulumi/pulumi/sdk/v3"): v["PULUMI_VERSION"],
        ("pulumi-language-python", "github.com/pulumi/pulumi/sdk/v3"): v[
            "PULUMI_LANGUAGE_PYTHON_VERSION"
        ],
        ("k8s", "k8s.io/kubernetes"): v["KUBERNETES_VERSION"],
        ("k8s", "go.etcd.io/etcd/server/v3"): v["ETCD_VERSION"],
    }
    for (module, path), version in pins.items():
        gomod = (tc / module / "go.mod").read_text()
        assert re.search(
            rf"^\s*(require\s+)?{re.escape(path)} v{re.escape(version)}\b", gomod, re.M
        ), f"toolchain/{module}/go.mod does not require {path} v{version}"
    # Every k8s.io staging module is replaced by the published release of the same version.
    k8s_mod = (tc / "k8s" / "go.mod").read_text()
    minor_patch = v["KUBERNETES_VERSION"].split(".", 1)[1]
    replaced = re.findall(r"^\s*(k8s\.io/[\w-]+) => \1 (v\S+)$", k8s_mod, re.M)
    assert len(replaced) > 20
    assert {ver for _, ver in replaced} == {f"v0.{minor_patch}"}


def test_python_sdk_pin_matches_the_cli() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [Requirement(d) for d in deps if Requirement(d).name == "pulumi"]
    cli = load_versions()["PULUMI_VERSION"]
    assert cli in pin.specifier, f"pyproject pins {pin}, the CLI is {cli}"
