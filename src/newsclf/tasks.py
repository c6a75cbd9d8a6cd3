"""Tasks: the label taxonomies of ``configs/task/*.yaml`` (name, labels, annotations column)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from newsclf.errors import NewsclfError, no_such_parameter


@dataclass(frozen=True)
class Task:
    """A classification task: its name, its labels (name -> one-line description) and the
    annotations column that holds its gold labels."""

    name: str
    labels: Mapping[str, str]
    description: str = ""
    column: str | None = None  # defaults to the task name

    def __post_init__(self) -> None:
        if len(self.labels) < 2:
            raise NewsclfError(
                f"task {self.name}: needs at least two labels, has {len(self.labels)}"
            )

    @property
    def label_names(self) -> list[str]:
        return list(self.labels)

    @property
    def annotation_column(self) -> str:
        return self.column or self.name

    @classmethod
    def from_config(cls, cfg: Mapping) -> Task:
        """Build a task from a ``configs/task/*.yaml`` mapping."""
        cfg = dict(cfg)
        for key in cfg:  # a misspelt key (colum:) would otherwise be silently ignored
            if key not in ("name", "labels", "description", "column"):
                name = cfg.get("name", "config")
                raise NewsclfError(f"task {name}: {no_such_parameter(cls, str(key))}")
        if "name" not in cfg or "labels" not in cfg:
            raise NewsclfError(f"task config needs 'name' and 'labels' keys, has {sorted(cfg)}")
        return cls(
            name=str(cfg["name"]),
            labels={str(k): str(v) for k, v in dict(cfg["labels"]).items()},
            description=str(cfg.get("description", "")),
            column=cfg.get("column"),
        )
