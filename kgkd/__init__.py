"""kgkd: knowledge-graph-guided, cross-domain multi-teacher knowledge distillation."""

from kgkd.errors import KGKDError
from kgkd.utils.compat import guard_torchvision

# A CUDA-built torchvision next to a CPU-only torch breaks every `transformers` model import;
# hide it (file checks only, torch is not imported). Import kgkd before transformers.
guard_torchvision()

__version__ = "0.1.0"
__all__ = ["KGKDError", "__version__"]
