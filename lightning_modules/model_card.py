"""The export's model card, written with ``huggingface_hub``'s card tools so the Hub reads its metadata.

``base_model`` is set only when the base is a hub id (a local path is invalid metadata and stays in the text);
``model-index`` carries the best epoch's validation ROUGE, and the test ROUGE once ``test`` ran on that checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from resumen.core.files import atomic_file
from resumen.core.runs import epoch_number
from resumen.core.summary_metrics import ALL_METRICS

CARD_FILE = "README.md"


def is_hub_id(name: str) -> bool:
    """A hub repository id (``google/flan-t5-small``, ``t5-base``) rather than a local directory."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not name or Path(name).expanduser().exists() or name.startswith((".", "/", "~")):
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def eval_results(dataset: str | None, dataset_config: str | None, split: str, scores: dict[str, float], scorer: str = ""):
    """Hub ``model-index`` entries, one per metric of ``resumen.core.summary_metrics`` in ``scores``; ``scorer`` names
    a ROUGE other than ours (the literature-comparable one)."""
    from huggingface_hub import EvalResult

    return [
        EvalResult(
            task_type="summarization",
            task_name="Summarization",
            dataset_type=dataset or "local",
            dataset_name=f"{dataset} ({dataset_config})" if dataset and dataset_config else (dataset or "local data files"),
            dataset_config=dataset_config if dataset else None,
            dataset_split=split,
            metric_type="rouge" if metric.group == "rouge" else metric.key,
            metric_name=f"{metric.label}{' ' + scorer if scorer else ''} ({split})",
            metric_config=f"{metric.key}-literature" if scorer else metric.key,
            metric_value=round(float(scores[metric.key]), 2),
        )
        for metric in ALL_METRICS
        if metric.key in scores
    ]


def build_card(
    base_model: str,
    prompt_template: str,
    epoch: int,
    checkpoint: str,
    validation: dict[str, float],
    settings: dict[str, Any],
    dataset: str | None = None,
    dataset_config: str | None = None,
    coverage: str | None = None,
    max_source_length: int = 512,
) -> Any:
    """The card of an export (a ``huggingface_hub.ModelCard``)."""
    from huggingface_hub import ModelCard, ModelCardData

    hub_base = is_hub_id(base_model)
    model_name = f"{Path(base_model).name}-resumen-es"
    scores = {key.removeprefix("val/"): value for key, value in validation.items()}
    data = ModelCardData(
        model_name=model_name,
        language="es",
        library_name="transformers",
        pipeline_tag="summarization",
        tags=["summarization", "spanish", "resumen", "lightning"] + (["lora"] if "model.lora.r" in settings else []),
        base_model=base_model if hub_base else None,
        datasets=[dataset] if dataset and is_hub_id(dataset) else None,
        eval_results=eval_results(dataset, dataset_config, "validation", scores) or None,
        resumen_checkpoint=Path(checkpoint).name if checkpoint else None,  # lets `test` add its scores later
    )
    shown = prompt_template.replace("\n", "\\n")
    source = f"[`{base_model}`](https://huggingface.co/{base_model})" if hub_base else f"the local model `{base_model}`"
    rows = "\n".join(f"| {name} | {value:.2f} |" for name, value in sorted(validation.items())) or "| (none) | |"
    recipe = "\n".join(f"| `{name}` | `{value}` |" for name, value in settings.items())
    text = f"""
# Spanish news summariser (fine-tuned with resumen)

Fine-tuned from {source} to summarise Spanish news. It was trained with the prompt `{shown}` (`{{text}}` is the
article); `config.json` keeps it as `prompt_template`.

Best checkpoint: epoch {epoch_number(epoch)} (`{Path(checkpoint).name if checkpoint else "final weights"}`).

| validation metric (epoch {epoch_number(epoch)}) | value |
|---|---|
{rows}

ROUGE is F-measure in 0-100 on Unicode words (accents kept, no stemming): resumen's Spanish ROUGE.

## Training settings

| setting | value |
|---|---|
{recipe}

## Tokenizer coverage

{coverage or "Not measured (coverage_samples was 0)."}

## Use

```python
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("<this directory>")
model = AutoModelForSeq2SeqLM.from_pretrained("<this directory>")
prompt = model.config.prompt_template.format(text=article)
inputs = tokenizer(prompt, return_tensors="pt", truncation=True, max_length={max_source_length})
print(tokenizer.decode(model.generate(**inputs)[0], skip_special_tokens=True))
```

With resumen: `python scripts/summarize.py --model <this directory> "article"`, or serve it with
`python scripts/serve.py --model <this directory>` (the same prompt, lengths and generation settings).
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{text}")


def add_test_results(export: Path, checkpoint: str, scores: dict[str, float], examples: int, literature: dict[str, float] | None = None) -> bool:
    """Add test ROUGE to an export's card when ``checkpoint`` is the one the export was made from."""
    from huggingface_hub import ModelCard

    path = export / CARD_FILE
    if not path.is_file():
        return False
    card = ModelCard.load(path)
    if not checkpoint or card.data.get("resumen_checkpoint") != Path(checkpoint).name:
        return False
    results = [r for r in (card.data.eval_results or []) if r.dataset_split != "test"]
    validation = results[0] if results else None
    dataset = validation.dataset_type if validation and validation.dataset_type != "local" else None
    config = validation.dataset_config if validation else None
    card.data.eval_results = results + eval_results(dataset, config, "test", scores)
    lines = "\n".join(f"| {key} | {value:.2f} |" for key, value in scores.items())
    if literature:  # its own entries and rows, named: never read as our Spanish scores
        card.data.eval_results += eval_results(dataset, config, "test", literature, "(literature-comparable)")
        lines += "\n" + "\n".join(f"| {key}, literature-comparable (rouge_score ASCII, Porter) | {value:.2f} |" for key, value in literature.items())
    body = card.text.split("\n## Test results", 1)[0].rstrip("\n")
    card.text = f"{body}\n\n## Test results\n\n{examples} test examples.\n\n| test metric | value |\n|---|---|\n{lines}\n"
    with atomic_file(path) as handle:
        handle.write(str(card))
    return True
