"""ONNX export of a student, checked against PyTorch with onnxruntime on real inputs.

The graph takes exactly what the PyTorch student takes: text students read the teachers'
(MiniLM) ``input_ids`` + ``attention_mask`` (int64, dynamic batch and length), image
students ``pixels`` [B,1,S,S] in 0..1 (dynamic batch); the output is ``logits`` [B,C].
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from kgkd.errors import ModelError

#: Largest accepted |ONNX − PyTorch| logit difference on the check inputs.
ONNX_TOLERANCE = 1e-4
OPSET = 17


class _TextGraph(nn.Module):
    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student = student

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.student({"input_ids": input_ids, "attention_mask": attention_mask}).logits


class _ImageGraph(nn.Module):
    def __init__(self, student: nn.Module) -> None:
        super().__init__()
        self.student = student

    def forward(self, pixels: Tensor) -> Tensor:
        return self.student({"pixels": pixels}).logits


def input_names(student: Any) -> tuple[str, ...]:
    """Names of the graph inputs for ``student``'s modality."""
    return ("input_ids", "attention_mask") if student.modality == "text" else ("pixels",)


def export_onnx(student: nn.Module, file: Path, batch: dict[str, Tensor]) -> dict[str, Any]:
    """Write ``student`` to ``file`` and check it on ``batch``; returns the check's figures.

    Raises:
        ModelError: the export failed, or the ONNX logits differ from PyTorch's by more
            than :data:`ONNX_TOLERANCE`.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError(f"ONNX export needs onnx and onnxruntime ({exc}); pip install onnx onnxruntime") from None
    student = student.eval().cpu()
    names = input_names(student)
    graph = (_TextGraph(student) if student.modality == "text" else _ImageGraph(student)).eval()
    args = tuple(batch[n] for n in names)
    axes = {n: {0: "batch", 1: "length"} if student.modality == "text" else {0: "batch"} for n in names}
    axes["logits"] = {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer / deprecation chatter; correctness is checked below
        fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)  # the fused encoder kernel has no ONNX form
        try:
            torch.onnx.export(graph, args, str(file), input_names=list(names), output_names=["logits"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - the exporter raises many types
            raise ModelError(f"ONNX export of the {student.architecture} student failed: {exc}") from None
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
        expected = graph(*args).float().numpy()
    session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {n: a.numpy() for n, a in zip(names, args)})[0]
    one = {n: a[:1] for n, a in zip(names, args)}  # another batch size and length: dynamic axes work
    if "attention_mask" in one:
        keep = int(one["attention_mask"].sum())
        one = {n: a[:, :keep] for n, a in one.items()}
    with torch.no_grad():
        single = graph(*one.values()).float().numpy()
    got_single = session.run(["logits"], {n: a.numpy() for n, a in one.items()})[0]
    diff = max(float(abs(got - expected).max()), float(abs(got_single - single).max()))
    if not diff <= ONNX_TOLERANCE:
        raise ModelError(
            f"ONNX check failed: max |onnxruntime − PyTorch| logit difference {diff:.3g} > {ONNX_TOLERANCE:g} "
            f"on {len(expected)} real inputs; nothing was written"
        )
    return {
        "file": file.name,
        "inputs": list(names),
        "opset": OPSET,
        "checked_on": len(expected) + 1,
        "max_abs_diff": diff,
        "tolerance": ONNX_TOLERANCE,
        "same_predictions": float((got.argmax(-1) == expected.argmax(-1)).mean()),
    }
