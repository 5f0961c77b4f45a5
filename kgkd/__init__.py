"""kgkd: knowledge-graph-guided, cross-domain multi-teacher knowledge distillation."""

from kgkd.errors import KGKDError

__version__ = "0.1.0"
__all__ = ["KGKDError", "__version__"]
