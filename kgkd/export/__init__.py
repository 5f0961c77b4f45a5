"""Export a saved student for serving: ``onnx`` (onnxruntime-checked) or ``hf`` (a folder plain
``transformers`` loads). :func:`export_student` is what ``kgkd export`` runs.

Outputs are staged in a hidden folder and moved into ``out`` only when the export and its
check both succeeded; an existing non-empty ``out`` is refused, never overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kgkd.errors import ConfigError

FORMATS: tuple[str, ...] = ("onnx", "hf")
REPORT_NAME = "export.json"


def export_student(
    student_dir: str | os.PathLike[str],
    fmt: str,
    out: str | os.PathLike[str],
    samples: int = 32,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export the student saved in ``student_dir`` as ``fmt`` into the new folder ``out``.

    Writes the model files, the tokenizer for text students, and ``export.json`` (the check's
    figures); returns that report.

    Raises:
        ConfigError: unknown format.
        OutputExistsError: ``out`` exists and is not empty (unless ``overwrite``: then only the
            files the export writes are replaced; the folder's other files stay).
        ModelError / CheckpointError: the student cannot be loaded, exported or does not check out.
    """
    from kgkd.export.inputs import (
        image_batch,
        image_size_of,
        max_length_of,
        read_meta,
        real_samples,
    )
    from kgkd.models import load_student
    from kgkd.utils.io import atomic_write_json, check_output_dir, staged_output_dir

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    check_output_dir(out, overwrite)  # refuse before the (slow) load
    student = load_student(student_dir).eval()
    meta = read_meta(student_dir)
    if fmt == "hf" and student.modality != "text":
        raise ConfigError("--format hf is for text students; export an image student with --format onnx")
    inputs = real_samples(student, meta, samples)
    report: dict[str, Any] = {"format": fmt, "student": str(Path(student_dir)), "architecture": student.architecture,
                              "labels": list(student.label_names)}  # fmt: skip
    with staged_output_dir(out, overwrite) as stage:
        if student.modality == "text":
            from kgkd.export.inputs import text_batch
            from kgkd.models.students.base import student_tokenizer

            tokenizer = student_tokenizer()  # the tokenizer the student reads (its own, not a fixed model's)
            max_length = max_length_of(student, meta)
            report["max_length"] = max_length
            if fmt == "hf":
                from kgkd.export.hf import export_hf

                report["check"] = export_hf(student, stage, inputs, tokenizer, max_length)
            else:
                from kgkd.export.onnx import export_onnx

                report["check"] = export_onnx(student, stage / "model.onnx", text_batch(inputs, tokenizer, max_length))
                tokenizer.save_pretrained(str(stage / "tokenizer"))
        else:
            from kgkd.export.onnx import export_onnx

            size = image_size_of(student, meta)
            report["image_size"] = size
            report["check"] = export_onnx(student, stage / "model.onnx", image_batch(inputs, size))
        atomic_write_json(stage / REPORT_NAME, report)
    return report


__all__ = ["FORMATS", "REPORT_NAME", "export_student"]
