"""Stable name <-> row-index maps for the node types of the PyG view."""

from __future__ import annotations

from dataclasses import dataclass, field

from kgkd.errors import GraphError
from kgkd.utils.suggest import did_you_mean


@dataclass(frozen=True)
class IndexMaps:
    """Name ↔ index per node type, in the order of the rows of ``data[node_type].x``."""

    names: dict[str, list[str]]
    iris: dict[str, list[str]]
    feature_names: dict[str, list[str]] = field(default_factory=dict)

    @property
    def index(self) -> dict[str, dict[str, int]]:
        """``{node_type: {name: index}}``."""
        return {t: {n: i for i, n in enumerate(ns)} for t, ns in self.names.items()}

    def __getitem__(self, node_type: str) -> dict[str, int]:
        self._check_type(node_type)
        return self.index[node_type]

    def _check_type(self, node_type: str) -> None:
        if node_type not in self.names:
            raise GraphError(
                f"node type '{node_type}' is not in this graph; available: {', '.join(self.names)}"
            )

    def index_of(self, node_type: str, name: str) -> int:
        """Row index of node ``name`` of ``node_type``."""
        self._check_type(node_type)
        try:
            return self.names[node_type].index(name)
        except ValueError:
            close = did_you_mean(name, self.names[node_type])
            hint = f" (did you mean '{close}'?)" if close is not None else ""
            raise GraphError(f"no {node_type} named '{name}' in the graph{hint}") from None

    def name_of(self, node_type: str, index: int) -> str:
        """Name of row ``index`` of ``node_type``."""
        self._check_type(node_type)
        return self.names[node_type][index]

    def num_nodes(self, node_type: str) -> int:
        return len(self.names.get(node_type, []))
