"""Typed, read-only views of graph nodes (what ``KnowledgeGraph`` accessors return)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Node:
    """Common part of every node: IRI, name (IRI local name), label and description."""

    iri: str
    name: str
    label: str
    description: str = ""
    #: numeric literal attributes in the kgkd namespace (booleans as 0.0/1.0).
    attributes: dict[str, float] = field(default_factory=dict)
    #: string literal attributes in the kgkd namespace (``genre``, ``source`` ...).
    text_attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DomainNode(Node):
    """A data domain (``kgkd:Domain``)."""

    modality: str | None = None
    task: str | None = None
    label_set: str | None = None
    #: names of the domains this one is a sub-domain of.
    parents: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TaskNode(Node):
    """A prediction task (``kgkd:Task``)."""

    label_set: str | None = None


@dataclass(frozen=True)
class LabelNode(Node):
    """One class label (``kgkd:Label``) with its index inside its label set."""

    label_set: str | None = None
    index: int | None = None
    equivalent: list[str] = field(default_factory=list)
    broader: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LabelSetNode(Node):
    """An ordered label set (``kgkd:LabelSet``); ``labels`` sorted by ``labelIndex``."""

    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TeacherNode(Node):
    """A teacher model (``kgkd:Teacher``): the domains it was trained on and what it predicts."""

    trained_on: list[str] = field(default_factory=list)
    label_set: str | None = None
    architecture: str | None = None


@dataclass(frozen=True)
class StudentNode(Node):
    """A student model (``kgkd:Student``), optional in graphs."""

    label_set: str | None = None
    architecture: str | None = None
