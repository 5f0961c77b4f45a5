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

from kgkd.signals import graph_weighting as _graph_weighting  # noqa: F401 - registers the graph weightings
from kgkd.signals import safe as _safe  # noqa: F401 - registers the safe default ``kg``
from kgkd.signals import transductive as _transductive  # noqa: F401 - registers ``kg_adapt``
from kgkd.signals.baselines import WEIGHTINGS, EnsembleWeighting
from kgkd.signals.calibration import TeacherCalibration, fit_temperature, temper
from kgkd.signals.encoders import ENCODERS, SignalEncoder, build_encoder
from kgkd.signals.features import AttributeSchema, NodeFeaturizer, NodeRecord, TextEmbedder
from kgkd.signals.fit import fit_signals
from kgkd.signals.fitted import FittedSignals
from kgkd.signals.graph_view import PATH_FEATURES, SignalGraph, signal_graph_from_kg
from kgkd.signals.heads import (
    AlignmentHead,
    FiLMProjector,
    SampleGate,
    TeacherWeightHead,
    sample_evidence,
)
from kgkd.signals.mixture import ensemble_nll
from kgkd.signals.posterior import DomainPosterior
from kgkd.signals.reliability import ReliabilityTable, collect_teacher_probs, measure_reliability
from kgkd.signals.shrinkage import (
    SHRINKAGE_GRID,
    SINGLE_SOURCE_PRIOR,
    ShrinkageChoice,
    choose_shrinkage,
    shrink,
)
from kgkd.signals.similarity import DomainSimilarity

__all__ = [
    "ENCODERS",
    "PATH_FEATURES",
    "SHRINKAGE_GRID",
    "SINGLE_SOURCE_PRIOR",
    "WEIGHTINGS",
    "AlignmentHead",
    "AttributeSchema",
    "DomainPosterior",
    "DomainSimilarity",
    "EnsembleWeighting",
    "FiLMProjector",
    "FittedSignals",
    "NodeFeaturizer",
    "NodeRecord",
    "ReliabilityTable",
    "SampleGate",
    "ShrinkageChoice",
    "SignalEncoder",
    "SignalGraph",
    "TeacherCalibration",
    "TeacherWeightHead",
    "TextEmbedder",
    "build_encoder",
    "choose_shrinkage",
    "collect_teacher_probs",
    "ensemble_nll",
    "fit_signals",
    "fit_temperature",
    "measure_reliability",
    "sample_evidence",
    "shrink",
    "signal_graph_from_kg",
    "temper",
]
