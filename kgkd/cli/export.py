"""``kgkd export STUDENT_DIR --format onnx|hf --out OUT``: a saved student, ready to serve.

``onnx`` writes ``OUT/model.onnx`` (inputs as the PyTorch student's; text students also get
``OUT/tokenizer/``) and checks it with onnxruntime on real test inputs (max |difference| of
the logits ≤ 1e-4). ``hf`` (BERT-shaped text students: presets text-small / text-base)
writes a Hugging Face folder — config, model.safetensors and the pruned tokenizer — that
``AutoModelForSequenceClassification.from_pretrained(OUT)`` and
``pipeline("text-classification", model=OUT)`` load. ``OUT/export.json`` holds the check.
OUT must be new or empty (or pass --overwrite); it is filled only when the export succeeded.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _export(args: argparse.Namespace) -> int:
    from kgkd.errors import ConfigError
    from kgkd.export import export_student

    if args.samples < 1:
        raise ConfigError(f"--samples must be >= 1, got {args.samples}")
    report = export_student(args.student_dir, args.format, args.out, samples=args.samples, overwrite=args.overwrite)
    check = report["check"]
    diff = check.get("max_abs_diff", check.get("max_abs_diff_in_vocabulary"))
    print(f"exported {report['architecture']} student to {args.out} ({args.format})")
    print(
        f"check on {check['checked_on']} real inputs: max |logit difference| {diff:.2e} "
        f"(tolerance {check['tolerance']:g}), same predictions {100 * check['same_predictions']:.1f}%"
    )
    if args.format == "hf":
        print(f"load with: transformers.pipeline('text-classification', model='{args.out}')")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser(
        "export",
        help="export a saved student to ONNX or a Hugging Face folder",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("student_dir", metavar="STUDENT_DIR", type=Path, help="a saved student folder")
    parser.add_argument("--format", required=True, choices=("onnx", "hf"), help="onnx or hf")
    parser.add_argument("--out", required=True, type=Path, metavar="OUT", help="new or empty output folder")
    parser.add_argument("--samples", type=int, default=32, help="real test inputs to check on (default 32)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier export's files in OUT (other files there are kept)")
    parser.set_defaults(func=_export)
