"""``kgkd predict STUDENT_DIR "some text"`` or ``--image file.png|.npy``: label one input.

Reads the student saved by a recipe run (``<run>/student``); text goes through the
MiniLM tokenizer the student was built on, images are scaled to 0..1 gray and resized
to the size the student was trained at. Prints the label and its probability.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kgkd.errors import DataError

if TYPE_CHECKING:  # torch loads only when a command runs (fast `kgkd --help`)
    import torch


def load_image(path: str | Path) -> torch.Tensor:
    """A gray image file (.png/.jpg via matplotlib, or .npy) as FloatTensor [1, H, W] in 0..1."""
    import torch

    file = Path(path)
    if not file.is_file():
        raise DataError(f"image file '{file}' does not exist")
    if file.suffix.lower() == ".npy":
        array = np.load(file, allow_pickle=False)
    else:
        import matplotlib.image as mpimg

        try:
            array = mpimg.imread(file)
        except (OSError, ValueError, SyntaxError) as exc:
            raise DataError(
                f"cannot read image '{file}': {exc}; give a .png or a .npy array"
            ) from None
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 3:  # colour/alpha → gray
        array = array[..., :3].mean(axis=-1)
    if array.ndim != 2:
        raise DataError(f"image '{file}' has shape {array.shape}; expected a 2-D gray image [H, W]")
    if array.max() > 1.0:  # uint8-style 0..255
        array = array / 255.0
    return torch.from_numpy(np.ascontiguousarray(array)).unsqueeze(0)


def student_batch(
    student: Any, meta: dict[str, Any], text: str | None = None, image: torch.Tensor | None = None
) -> dict:
    """One-item batch for ``student`` with the collator its recipe used."""
    from kgkd.data import ImageCollator, TextCollator, load_minilm_tokenizer

    item: dict[str, Any] = {"label": -1, "domain": 0, "index": 0}
    if getattr(student, "modality", "text") == "text":
        if text is None:
            raise DataError(
                "this student reads text; pass the sentence as an argument, not --image"
            )
        item["text"] = text
        return TextCollator(load_minilm_tokenizer(), int(meta.get("max_length", 64)))([item])
    if image is None:
        raise DataError("this student reads images; pass --image FILE.png|.npy")
    item["image"] = image
    return ImageCollator(size=int(meta.get("image_size", 28)))([item])


def read_meta(student_dir: Path) -> dict[str, Any]:
    """The recipe's notes next to the student (``kgkd_recipe.json``; empty if absent)."""
    import json

    file = student_dir / "kgkd_recipe.json"
    return json.loads(file.read_text()) if file.is_file() else {}


def _predict(args: argparse.Namespace) -> int:
    import torch

    from kgkd.models import load_student

    folder = Path(args.student_dir)
    student = load_student(folder).eval()
    meta = read_meta(folder)
    if args.image is not None and args.text:
        raise DataError("give either a sentence or --image, not both")
    image = load_image(args.image) if args.image is not None else None
    batch = student_batch(student, meta, " ".join(args.text) if args.text else None, image)
    with torch.no_grad():
        probs = torch.softmax(student(batch).logits.float(), dim=-1)[0]
    order = probs.argsort(descending=True)[: args.top]
    names = student.label_names
    for rank, j in enumerate(order.tolist()):
        print(f"{names[j]}\t{probs[j]:.3f}" if rank else f"{names[j]}\t{probs[j]:.3f}\t(predicted)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        help="label a sentence or an image with a saved student",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "student_dir", metavar="STUDENT_DIR", help="folder written by a recipe run (<run>/student)"
    )
    parser.add_argument("text", nargs="*", help="the sentence to label (text students)")
    parser.add_argument(
        "--image", default=None, metavar="FILE", help="gray image (.png or .npy) for digit students"
    )
    parser.add_argument("--top", type=int, default=2, help="how many labels to print (default 2)")
    parser.set_defaults(func=_predict)
