"""Hugging Face export of a BERT-shaped text student: ``config.json`` + ``model.safetensors`` +
a tokenizer rewritten to the student's pruned vocabulary.

Plain ``transformers`` loads the folder (``AutoModelForSequenceClassification`` /
``pipeline("text-classification")``); no custom code is needed because the student *is* a
``BertForSequenceClassification``. The check reloads the folder and compares its logits
with the PyTorch student on real texts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from kgkd.errors import ModelError

#: Largest accepted |HF − PyTorch| logit difference on texts the pruned vocabulary covers.
HF_TOLERANCE = 1e-4


def export_hf(student: Any, folder: Path, texts: list[str], tokenizer: Any, max_length: int) -> dict[str, Any]:
    """Write the HF folder for ``student`` into ``folder`` (existing, empty) and check it.

    ``tokenizer`` is the teachers' tokenizer the student was trained with. The check covers
    the texts whose teacher tokenization uses kept pieces only (where the pruned tokenizer
    gives the same pieces); on the others the exported tokenizer re-splits words the student
    maps to ``[UNK]``, so only the agreement of predicted labels is reported.

    Raises:
        ModelError: the student is not BERT-shaped, or the reloaded model disagrees.
    """
    from kgkd.export.inputs import text_batch
    from kgkd.utils.compat import auto_sequence_classifier

    if getattr(student, "architecture", None) != "bert":
        raise ModelError(
            f"--format hf needs a BERT-shaped text student (presets text-small / text-base, architecture "
            f"'bert'); this one is '{getattr(student, 'architecture', '?')}', which has no plain-transformers "
            "equivalent: export it with --format onnx"
        )
    student = student.eval().cpu()
    pruned = student.pruned_tokenizer(tokenizer)
    pruned.model_max_length = max_length
    student.bert.config.pad_token_id = student.pad_row
    student.bert.save_pretrained(str(folder), safe_serialization=True)
    pruned.save_pretrained(str(folder))
    model = auto_sequence_classifier().from_pretrained(str(folder), local_files_only=True).eval()
    full = text_batch(texts, tokenizer, max_length)
    mine = pruned(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        expected = student(full).logits
        got = model(input_ids=mine["input_ids"], attention_mask=mine["attention_mask"]).logits
    in_vocab = torch.tensor([
        bool((full["input_ids"][i] != tokenizer.unk_token_id).all())
        and student.token_map[full["input_ids"][i][full["attention_mask"][i] == 1]].tolist()
        == mine["input_ids"][i][mine["attention_mask"][i] == 1].tolist()
        for i in range(len(texts))
    ])  # fmt: skip
    diff = float((got - expected)[in_vocab].abs().max()) if in_vocab.any() else float("nan")
    if in_vocab.any() and not diff <= HF_TOLERANCE:
        raise ModelError(
            f"HF check failed: reloaded model differs from the student by {diff:.3g} > {HF_TOLERANCE:g} "
            f"on {int(in_vocab.sum())} in-vocabulary texts; nothing was written"
        )
    return {
        "files": sorted(p.name for p in folder.iterdir()),
        "checked_on": len(texts),
        "in_vocabulary": int(in_vocab.sum()),
        "max_abs_diff_in_vocabulary": diff,
        "tolerance": HF_TOLERANCE,
        "same_predictions": float((got.argmax(-1) == expected.argmax(-1)).float().mean()),
        "vocab_size": int(student.config.num_tokens),
    }
