"""The project's exception types.

Every error a user can cause or meet derives from :class:`GovcloudError`; the CLI turns them into
a clean message and an exit code, so no traceback ever reaches the user.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class GovcloudError(Exception):
    """Base of every error govcloud raises on purpose."""

    exit_code = EXIT_FAILED


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located by its path (``regions.52.cities[2].code``)."""

    path: str
    message: str
    source: str | None = None  # the file it came from, when known

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"

    def as_dict(self) -> dict[str, str | None]:
        return {"path": self.path, "message": self.message, "source": self.source}


class InputError(GovcloudError):
    """Bad input: the user must change a file or an argument."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, problems: list[Problem] | str, *, title: str = "invalid input") -> None:
        if isinstance(problems, str):
            problems = [Problem("", problems)]
        self.problems = problems
        self.title = title
        super().__init__(self.render())

    def render(self) -> str:
        lines = [
            f"{self.title} ({len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}):"
        ]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class SpecError(InputError):
    """The spec is malformed or inconsistent."""

    def __init__(self, problems: list[Problem] | str, *, title: str = "invalid spec") -> None:
        super().__init__(problems, title=title)


class PlanError(InputError):
    """The spec is well formed but cannot be planned (address exhaustion, isolation breach...)."""

    def __init__(self, problems: list[Problem] | str, *, title: str = "cannot plan") -> None:
        super().__init__(problems, title=title)


class OperationError(GovcloudError):
    """A real operation (a host, a server, a tool) failed."""

    exit_code = EXIT_FAILED
