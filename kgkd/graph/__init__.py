"""The knowledge-graph layer: RDF vocabulary, loading, SHACL validation, SPARQL,
label maps and the networkx / PyTorch Geometric views of a kgkd graph."""

from kgkd.graph.knowledge_graph import KnowledgeGraph
from kgkd.graph.nodes import DomainNode, LabelNode, LabelSetNode, Node, StudentNode, TaskNode, TeacherNode
from kgkd.graph.index_maps import IndexMaps
from kgkd.graph.vocab import KGKD

__all__ = [
    "KGKD",
    "KnowledgeGraph",
    "IndexMaps",
    "Node",
    "DomainNode",
    "TaskNode",
    "LabelNode",
    "LabelSetNode",
    "TeacherNode",
    "StudentNode",
]
