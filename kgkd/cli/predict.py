"""``kgkd predict STUDENT_DIR ...``: label texts or images with a saved student.

Inputs (one of):
  "some text" ...        each argument is one text
  -                      texts from stdin, one per line
  --input FILE           .txt (one text per line), .csv/.tsv or .jsonl (the --column field,
                         default "text"); FILE "-" reads stdin
  --image FILE|FOLDER    a gray image (.png/.jpg/.npy) or every such image in a folder

One input prints its top labels; several print a table (one row per input, batched).
Empty or whitespace-only texts are refused (naming the line); a text longer than the
student reads gets a one-line note on stderr saying how many tokens were cut.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kgkd.errors import DataError
from kgkd.export.inputs import read_meta

if TYPE_CHECKING:  # torch loads only when a command runs (fast `kgkd --help`)
    import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".npy")
__all__ = ["load_image", "read_inputs", "read_meta"]


def load_image(path: str | Path) -> torch.Tensor:
    """A gray image file (.png/.jpg via matplotlib, or .npy) as FloatTensor [1, H, W] in 0..1."""
    import torch

    file = Path(path)
    if not file.is_file():
        raise DataError(f"image file '{file}' does not exist")
    if file.suffix.lower() == ".npy":
        try:
            array = np.load(file, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read image '{file}': {exc}; give a .png or a .npy array") from None
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


def image_files(path: str | Path) -> list[Path]:
    """``[path]`` for a file, else the folder's images (sorted by name)."""
    where = Path(path)
    if not where.is_dir():
        return [where]
    files = sorted(p for p in where.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"folder '{where}' holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


# --------------------------------------------------------------------------- text inputs
def _check_text(text: str, where: str) -> str:
    if not text.strip():
        raise DataError(f"{where} is empty or whitespace only; every input must hold text to label")
    return text


def _lines(lines: Iterable[str], source: str) -> list[tuple[str, str]]:
    return [(_check_text(line.rstrip("\r\n"), f"{source} line {i}"), f"{source}:{i}")
            for i, line in enumerate(lines, 1)]  # fmt: skip


def read_inputs(path: str, column: str = "text", stdin: Any = None) -> list[tuple[str, str]]:
    """``(text, where)`` pairs from a .txt/.csv/.tsv/.jsonl file, or from stdin for ``"-"``.

    Raises:
        DataError: missing file, missing column, bad JSON, empty text or no input at all
            (each message names the file and line).
    """
    import csv
    import json

    if path == "-":
        stream = stdin if stdin is not None else sys.stdin
        rows = _lines(stream.read().splitlines(), "stdin")
        if not rows:
            raise DataError("stdin held no lines; pipe one text per line into `kgkd predict DIR -`")
        return rows
    file = Path(path)
    if not file.is_file():
        raise DataError(f"input file '{file}' does not exist")
    suffix = file.suffix.lower()
    try:
        content = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{file} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8") from None
    if suffix in (".csv", ".tsv"):
        reader = csv.DictReader(content.splitlines(), delimiter="\t" if suffix == ".tsv" else ",")
        if column not in (reader.fieldnames or []):
            raise DataError(f"{file}: no column '{column}' (columns: {reader.fieldnames}); pass --column NAME")
        rows = [(_check_text(r[column] or "", f"{file} line {reader.line_num} ('{column}')"), f"{file.name}:{reader.line_num}")
                for r in reader]  # fmt: skip
    elif suffix in (".jsonl", ".json"):
        rows = []
        for i, line in enumerate(content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise DataError(f"{file} line {i}: not valid JSON ({exc}); one JSON object per line") from None
            if not isinstance(obj, dict) or not isinstance(obj.get(column), str):
                raise DataError(f"{file} line {i}: no string field '{column}'; pass --column NAME")
            rows.append((_check_text(obj[column], f"{file} line {i} ('{column}')"), f"{file.name}:{i}"))
    else:
        rows = _lines(content.splitlines(), str(file))
        rows = [(t, f"{file.name}:{w.rsplit(':', 1)[1]}") for t, w in rows]
    if not rows:
        raise DataError(f"{file} holds no inputs; give one text per line (or a '{column}' column)")
    return rows


def cut_notes(texts: list[str], tokenizer: Any, max_length: int) -> list[str]:
    """One line per text longer than ``max_length`` tokens, saying how many were cut."""
    notes = []
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]]
    for i, n in enumerate(lengths):
        if n > max_length:
            notes.append(f"kgkd: note: input {i + 1} is {n} tokens long; the student reads {max_length}, "
                         f"so the last {n - max_length} were cut")  # fmt: skip
    return notes


# --------------------------------------------------------------------------- command
def _gather(args: argparse.Namespace, modality: str) -> tuple[list[Any], list[str]]:
    """The inputs and their display names, checked against the student's modality."""
    texts = list(args.text)
    if args.image is not None and (texts or args.input is not None):
        raise DataError("give either texts (arguments, - or --input) or --image, not both")
    if modality != "text":
        if texts or args.input is not None:
            raise DataError("this student reads images; pass --image FILE.png|.npy or a folder of images")
        if args.image is None:
            raise DataError("this student reads images; pass --image FILE.png|.npy or a folder of images")
        files = image_files(args.image)
        return [load_image(f) for f in files], [f.name for f in files]
    if args.image is not None:
        raise DataError("this student reads text; pass the sentence as an argument, not --image")
    if args.input is not None and texts:
        raise DataError("give texts as arguments or with --input FILE, not both")
    if args.input is not None:
        rows = read_inputs(args.input, args.column)
    elif texts == ["-"]:
        rows = read_inputs("-")
    elif texts:
        if "-" in texts:
            raise DataError("'-' (read stdin) must be the only text argument")
        rows = [(_check_text(t, f"text argument {i}"), str(i)) for i, t in enumerate(texts, 1)]
    else:
        raise DataError("no input: pass a sentence, - for stdin, or --input FILE")
    return [t for t, _ in rows], [t for t, _ in rows]


def _predict(args: argparse.Namespace) -> int:
    import torch

    from kgkd.export.inputs import image_batch, image_size_of, max_length_of
    from kgkd.models import load_student

    if args.batch_size < 1 or args.top < 1:
        raise DataError(f"--batch-size and --top must be >= 1, got {args.batch_size} and {args.top}")
    folder = Path(args.student_dir)
    student = load_student(folder).eval()
    meta = read_meta(folder)
    inputs, shown = _gather(args, getattr(student, "modality", "text"))
    if student.modality == "text":
        from kgkd.export.inputs import text_batch
        from kgkd.models.students.base import student_tokenizer

        tokenizer, max_length = student_tokenizer(), max_length_of(student, meta)
        for note in cut_notes(inputs, tokenizer, max_length):
            print(note, file=sys.stderr)
        make = lambda chunk: text_batch(chunk, tokenizer, max_length)
    else:
        size = image_size_of(student, meta)
        make = lambda chunk: image_batch(chunk, size)
    probs = []
    with torch.no_grad():
        for start in range(0, len(inputs), args.batch_size):
            batch = make(inputs[start : start + args.batch_size])
            probs.append(torch.softmax(student(batch).logits.float(), dim=-1))
    table = torch.cat(probs)
    names = student.label_names
    if len(inputs) == 1:
        p = table[0]
        for rank, j in enumerate(p.argsort(descending=True)[: args.top].tolist()):
            print(f"{names[j]}\t{p[j]:.3f}" + ("" if rank else "\t(predicted)"))
        return 0
    width = max(5, *(len(n) for n in names))
    print(f"{'#':>4s}  {'label':{width}s}  {'prob':>5s}  input")
    for i, (p, what) in enumerate(zip(table, shown), 1):
        j = int(p.argmax())
        text = " ".join(what.split())
        print(f"{i:4d}  {names[j]:{width}s}  {p[j]:.3f}  {text[:70] + ('…' if len(text) > 70 else '')}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    parser = subparsers.add_parser(
        "predict",
        help="label texts or images with a saved student",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "student_dir", metavar="STUDENT_DIR", help="folder written by a recipe run (<run>/student)"
    )
    parser.add_argument("text", nargs="*", help="texts to label (text students); - reads stdin")
    parser.add_argument("--input", default=None, metavar="FILE",
                        help="file of texts: .txt one per line, .csv/.tsv/.jsonl with --column; - = stdin")
    parser.add_argument("--column", default="text", help="text column of a .csv/.tsv/.jsonl --input (default text)")
    parser.add_argument(
        "--image", default=None, metavar="FILE|FOLDER", help="gray image (.png/.npy) or a folder of them"
    )
    parser.add_argument("--top", type=int, default=2, help="labels shown for a single input (default 2)")
    parser.add_argument("--batch-size", type=int, default=32, help="inputs per forward pass (default 32)")
    parser.set_defaults(func=_predict)
