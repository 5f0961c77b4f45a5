"""Teacher cache: run a teacher once over a dataset, keep its outputs on disk.

Teachers are expensive and frozen, so every distillation run over the same data reads their
logits and chosen features from a cache instead of running them. Tensors: ``logits`` (or
``logits.topk_values`` + ``logits.topk_indices`` for large label spaces) and
``feature.<name>``; a JSON header::

    {"format": "kgkd-teacher-cache", "version": 1|2, "fingerprint": ..., "teacher": ...,
     "label_names": [...], "num_samples": N, "num_labels": C, "feature_shapes": {...},
     "dtype": "fp16", "top_k": null, "preprocessing": ..., "dataset_fingerprint": ...,
     "created": ISO-8601}

Layouts (:mod:`.format`): a **sharded folder** (v2, the default for new caches — shards of a
fixed number of items + ``index.json`` with the shard list and sha256 checksums; built shard
by shard in constant memory, resumable after a kill, split across ``torchrun`` ranks, read
lazily row by row) or a **single ``*.safetensors`` file** (v1, still read and written).

The fingerprint is ``sha256(teacher.fingerprint() + dataset.fingerprint() + preprocessing)``:
any change of weights, data or preprocessing makes the cache stale. A cache is also the unit
of cross-site hand-over: a site that may not share its data or teacher exports its teacher's
outputs on a shared transfer set (:meth:`TeacherCache.export`, per shard) and the distilling
site imports them (:meth:`TeacherCache.import_`).

Modules: ``format`` (names, header, checks), ``reader`` (lazy row reads), ``build``
(streamed, resumable, distributed building), ``teacher_cache``, ``cached_teacher``.
"""

from kgkd.distill.cache.build import BuildReport
from kgkd.distill.cache.cached_teacher import CachedTeacher
from kgkd.distill.cache.format import (
    DEFAULT_SHARD_SIZE,
    DTYPES,
    FORMAT,
    INDEX_NAME,
    SHARDED_VERSION,
    TOPK_GAP,
    VERSION,
    cache_fingerprint,
    default_cache_path,
    layout_of,
)
from kgkd.distill.cache.teacher_cache import TeacherCache

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "DTYPES",
    "FORMAT",
    "INDEX_NAME",
    "SHARDED_VERSION",
    "TOPK_GAP",
    "VERSION",
    "BuildReport",
    "CachedTeacher",
    "TeacherCache",
    "cache_fingerprint",
    "default_cache_path",
    "layout_of",
]
