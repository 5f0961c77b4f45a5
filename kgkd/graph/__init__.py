"""The knowledge-graph layer: RDF vocabulary, loading, SHACL validation, SPARQL,
label maps and the networkx / PyTorch Geometric views of a kgkd graph."""

from kgkd.graph.index_maps import IndexMaps
from kgkd.graph.knowledge_graph import KnowledgeGraph
from kgkd.graph.nodes import (
    DomainNode,
    LabelNode,
    LabelSetNode,
    Node,
    StudentNode,
    TaskNode,
    TeacherNode,
)
from kgkd.graph.vocab import KGKD

__all__ = [
    "KGKD",
    "DomainNode",
    "IndexMaps",
    "KnowledgeGraph",
    "LabelNode",
    "LabelSetNode",
    "Node",
    "StudentNode",
    "TaskNode",
    "TeacherNode",
]
