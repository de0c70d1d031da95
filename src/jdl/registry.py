"""A named registry of strategies (matchers, propensity models, estimators, measures, index rules)."""

from __future__ import annotations

from typing import TypeVar

from jdl.errors import JdlUserError

T = TypeVar("T")


class Registry(dict[str, T]):
    """Strategies keyed by the name a spec uses for them: a dict with two guards.

    Registering a name twice is a programming error (ValueError); looking up an
    unknown name is a user error (JdlUserError naming the spec key and listing
    the names available).
    """

    def __init__(self, kind: str, spec_key: str) -> None:
        super().__init__()
        self.kind = kind
        self.spec_key = spec_key

    def __setitem__(self, name: str, entry: T) -> None:
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        super().__setitem__(name, entry)

    def register(self, name: str, entry: T) -> T:
        self[name] = entry
        return entry

    def __missing__(self, name: str) -> T:
        raise JdlUserError.single(
            self.spec_key,
            f"unknown {self.kind}",
            value=name,
            allowed=", ".join(sorted(self)),
        )

    def names(self) -> list[str]:
        return sorted(self)
