"""The kgkd RDF vocabulary: one namespace, the node classes and the relations.

A kgkd knowledge graph describes *domains* (where data comes from), *tasks*,
*labels* grouped in *label sets*, and *teachers* (which domains they were trained
on, which label set they predict). Instance IRIs may live in any namespace; the
IRI's local name is the node's ``name`` and must equal the data / teacher name
used in the rest of kgkd (``imdb``, ``teacher_imdb`` ...).
"""

from __future__ import annotations

from rdflib import Namespace, URIRef
from rdflib.namespace import DCTERMS, OWL, RDF, RDFS, XSD

#: The kgkd vocabulary namespace.
KGKD = Namespace("https://w3id.org/kgkd/vocab#")

#: Default namespace for instances created from code (``from_networkx``).
KGKD_DATA = Namespace("https://w3id.org/kgkd/data#")

# --- classes ----------------------------------------------------------------
Domain = KGKD.Domain
Task = KGKD.Task
Label = KGKD.Label
LabelSet = KGKD.LabelSet
Teacher = KGKD.Teacher
Student = KGKD.Student
Dataset = KGKD.Dataset

#: rdf:type class → node type name used in networkx / PyG views (order = drawing order).
NODE_TYPES: dict[URIRef, str] = {
    Domain: "domain",
    Task: "task",
    LabelSet: "label_set",
    Label: "label",
    Teacher: "teacher",
    Student: "student",
    Dataset: "dataset",
}
#: node type name → rdf:type class.
CLASS_OF: dict[str, URIRef] = {v: k for k, v in NODE_TYPES.items()}

#: Node types that become PyG node types (students/datasets stay in RDF/networkx only).
PYG_NODE_TYPES: tuple[str, ...] = ("domain", "task", "label", "label_set", "teacher")

# --- relations (object properties between typed nodes) -----------------------
trainedOn = KGKD.trainedOn
predicts = KGKD.predicts
hasTask = KGKD.hasTask
hasLabelSet = KGKD.hasLabelSet
subDomainOf = KGKD.subDomainOf
sharesGenre = KGKD.sharesGenre
sharesModality = KGKD.sharesModality
sameSource = KGKD.sameSource
similarTo = KGKD.similarTo
inLabelSet = KGKD.inLabelSet
equivalentLabel = KGKD.equivalentLabel
broaderLabel = KGKD.broaderLabel

#: Weighted-link blank node: ``:a kgkd:similarTo [ kgkd:target :b ; kgkd:weight 0.8 ]``.
target = KGKD.target
weight = KGKD.weight

#: Relations whose object may be a weighted blank node instead of a plain IRI.
WEIGHTED_RELATIONS: frozenset[URIRef] = frozenset({similarTo})

# --- literal properties ---------------------------------------------------------
architecture = KGKD.architecture
modality = KGKD.modality
labelIndex = KGKD.labelIndex
resolution = KGKD.resolution
channels = KGKD.channels
isPhoto = KGKD.isPhoto
avgLength = KGKD.avgLength
genre = KGKD.genre
source = KGKD.source

#: Literal properties lifted into dedicated dataclass fields (not into ``attributes``).
DEDICATED_LITERALS: frozenset[URIRef] = frozenset({modality, architecture, labelIndex})

#: Properties holding a human description (first found wins).
DESCRIPTION_PROPERTIES: tuple[URIRef, ...] = (RDFS.comment, DCTERMS.description)

#: Modalities a domain may declare.
MODALITIES: tuple[str, ...] = ("text", "image")

#: Prefixes bound on every loaded graph and offered to SPARQL queries.
PREFIXES: dict[str, Namespace] = {
    "kgkd": KGKD,
    "rdf": RDF,
    "rdfs": RDFS,
    "xsd": XSD,
    "owl": OWL,
    "dcterms": DCTERMS,
}


def local_name(iri: str) -> str:
    """The part of ``iri`` after the last ``#`` or ``/`` (the kgkd node name)."""
    text = str(iri)
    for sep in ("#", "/", ":"):
        if sep in text:
            text = text.rsplit(sep, 1)[1] or text
    return text
