"""A read-only name -> declaration mapping, built from the source declarations on first use.

`endpoints.ENDPOINTS` and `schema.TABLES` are assembled from `pipelines.altegio.sources`, whose
modules import `endpoints.py` and `schema.py` for their vocabulary (Endpoint, the column
helpers). Building the registries while those modules are still being imported would be an
import cycle; building them on first lookup is not.
"""

from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

V = TypeVar("V")


class Registry(Mapping[str, V]):
    """A mapping whose contents `build()` returns the first time anything is looked up."""

    def __init__(self, build: Callable[[], Mapping[str, V]]) -> None:
        self._build = build
        self._items: Mapping[str, V] | None = None

    def _resolved(self) -> Mapping[str, V]:
        if self._items is None:
            self._items = dict(self._build())
        return self._items

    def __getitem__(self, name: str) -> V:
        return self._resolved()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._resolved())

    def __len__(self) -> int:
        return len(self._resolved())

    def __repr__(self) -> str:
        return f"Registry({list(self)!r})"
