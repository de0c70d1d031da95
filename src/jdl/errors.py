"""The one user-facing error class.

Every problem a user can fix (a spec key, a file, a column, a row) is raised as
`JdlUserError`; the CLI prints it without a traceback and exits with its
`exit_status` (2 for bad input, 1 for an evaluation that cannot be completed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_BAD_INPUT = 2
EXIT_CANNOT_COMPLETE = 1


@dataclass(frozen=True)
class Problem:
    """One problem found in a user's input.

    `where` names the file and the location inside it (YAML path and line,
    column name, row number); `allowed` says what would have been accepted.
    """

    where: str
    message: str
    value: object = None
    allowed: str | None = None
    hint: str | None = None

    def render(self) -> str:
        parts = [f"{self.where}: {self.message}"]
        if self.value is not None:
            # numpy scalars print as np.float64(0.0); the user wrote or supplied 0.0
            value = self.value.item() if type(self.value).__module__ == "numpy" else self.value
            parts.append(f"got {value!r}")
        if self.allowed:
            parts.append(f"allowed: {self.allowed}")
        text = "; ".join(parts)
        if self.hint:
            text += f". Hint: {self.hint}"
        return text


@dataclass
class JdlUserError(Exception):
    """A problem with the user's spec, files or data, or an evaluation that cannot complete."""

    problems: list[Problem] = field(default_factory=list)
    exit_status: int = EXIT_BAD_INPUT

    def __post_init__(self) -> None:
        super().__init__(self.render())

    @classmethod
    def single(
        cls,
        where: str,
        message: str,
        *,
        value: object = None,
        allowed: str | None = None,
        hint: str | None = None,
        exit_status: int = EXIT_BAD_INPUT,
    ) -> JdlUserError:
        return cls([Problem(where, message, value, allowed, hint)], exit_status)

    def render(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0].render()
        lines = [f"{len(self.problems)} problems:"]
        lines.extend(f"  - {p.render()}" for p in self.problems)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


class EvaluationCannotComplete(JdlUserError):
    """The inputs are valid but the evaluation cannot be completed (e.g. too few people)."""

    def __init__(self, where: str, message: str, hint: str | None = None) -> None:
        super().__init__([Problem(where, message, hint=hint)], EXIT_CANNOT_COMPLETE)
