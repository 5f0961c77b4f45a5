"""KG-guided signals: which teacher to trust on which domain, and how to align to it.

GNN encoders (:mod:`~kgkd.signals.encoders`) embed the knowledge graph's domains
and teachers; heads (:mod:`~kgkd.signals.heads`) turn the embeddings into teacher
weights ``w(domain, teacher)``, per-sample gates and alignment signals; they are
fitted (:func:`fit_signals`) so the weighted teacher ensemble is reliable on the
labelled source domains (:mod:`~kgkd.signals.reliability`) and transfer to
domains with no labels — including domains that only appear in a new Turtle file.
The fitted weights are shrunk toward uniform by a λ chosen with inner
leave-one-source-domain-out CV (:mod:`~kgkd.signals.shrinkage`).
Baselines live next to them (:data:`WEIGHTINGS`), and
:func:`leave_one_domain_out` compares everything honestly.
"""

from kgkd.signals.encoders import ENCODERS, SignalEncoder, build_encoder
from kgkd.signals.features import AttributeSchema, NodeFeaturizer, NodeRecord, TextEmbedder
from kgkd.signals.fit import ensemble_nll, fit_signals
from kgkd.signals.fitted import FittedSignals
from kgkd.signals.graph_view import PATH_FEATURES, SignalGraph, signal_graph_from_kg
from kgkd.signals.heads import (
    AlignmentHead,
    FiLMProjector,
    SampleGate,
    TeacherWeightHead,
    sample_evidence,
)
from kgkd.signals.reliability import ReliabilityTable, collect_teacher_probs, measure_reliability
from kgkd.signals.shrinkage import (
    SHRINKAGE_GRID,
    SINGLE_SOURCE_PRIOR,
    ShrinkageChoice,
    choose_shrinkage,
    shrink,
)

__all__ = [
    "ENCODERS",
    "PATH_FEATURES",
    "SHRINKAGE_GRID",
    "SINGLE_SOURCE_PRIOR",
    "AlignmentHead",
    "AttributeSchema",
    "FiLMProjector",
    "FittedSignals",
    "NodeFeaturizer",
    "NodeRecord",
    "ReliabilityTable",
    "SampleGate",
    "ShrinkageChoice",
    "SignalEncoder",
    "SignalGraph",
    "TeacherWeightHead",
    "TextEmbedder",
    "build_encoder",
    "choose_shrinkage",
    "collect_teacher_probs",
    "ensemble_nll",
    "fit_signals",
    "measure_reliability",
    "sample_evidence",
    "shrink",
    "signal_graph_from_kg",
]
