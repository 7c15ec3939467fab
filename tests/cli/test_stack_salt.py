"""`govcloud pulumi` lends the backend's salt to the stack file only while pulumi runs: the
committed file never keeps it, and what pulumi wrote into the file (`config set`) is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from govcloud.cli.stack import backend_salt, option

pytestmark = pytest.mark.unit

SALT_LINE = "encryptionsalt: v1:abc:def"


def _lab_stack(state: Path) -> Path:
    """A committed-style stack file (no salt) and the backend's salt kept in ``state``."""
    config = state / "Pulumi.lab.yaml"
    config.write_text("config:\n  govcloud:target: lab\n", encoding="utf-8")
    (state / "pulumi-salts").mkdir()
    (state / "pulumi-salts" / "lab").write_text(SALT_LINE + "\n")
    return config


def test_the_salt_is_lent_then_taken_back(tmp_path: Path) -> None:
    config = _lab_stack(tmp_path)
    with backend_salt("lab", tmp_path, config):
        assert SALT_LINE in config.read_text()
    assert config.read_text() == "config:\n  govcloud:target: lab\n"


def test_a_salt_pulumi_made_is_kept_in_the_state(tmp_path: Path) -> None:
    config = tmp_path / "stack.yaml"
    with backend_salt("e2e", tmp_path, config):
        config.write_text(SALT_LINE + "\n", encoding="utf-8")  # what `stack init` writes
    assert (tmp_path / "pulumi-salts" / "e2e").read_text().strip() == SALT_LINE
    assert not config.exists()  # it held nothing but the salt


def test_config_set_during_the_run_is_kept(tmp_path: Path) -> None:
    config = _lab_stack(tmp_path)
    with backend_salt("lab", tmp_path, config):
        config.write_text(
            f"{SALT_LINE}\nconfig:\n  govcloud:kubeconfig: k.yaml\n  govcloud:target: lab\n",
            encoding="utf-8",
        )
    text = config.read_text()
    assert "govcloud:kubeconfig: k.yaml" in text and "encryptionsalt" not in text


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["up", "--stack", "lab"], "lab"),
        (["up", "-s", "lab"], "lab"),
        (["up", "--stack=lab", "--yes"], "lab"),
        (["up", "--yes"], None),
        (["up", "--stack"], None),
    ],
)
def test_the_stack_option_in_either_form(args: list[str], expected: str | None) -> None:
    assert option(args, "--stack", "-s") == expected
