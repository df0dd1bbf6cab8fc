"""``learning_curve.png`` in each fitted run: training and validation loss, validation ROUGE, per epoch, with the
epoch the best checkpoint came from marked (epochs counted from 1, as everywhere people read them). Where people look
rather than read."""

from __future__ import annotations

from pathlib import Path


def plot_learning_curve(history: dict[int, dict[str, float]], train_losses: dict[int, float], best_epoch: int | None, monitor: str | None, path: Path) -> bool:
    """Write the PNG (atomically); ``False`` when there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from resumen.core.files import atomic_file
    from resumen.core.runs import epoch_number

    epochs = sorted(history)
    if not epochs:
        return False
    shown = [epoch_number(e) for e in epochs]  # counted from 1, as the console and the report count
    figure, (losses, rouge) = plt.subplots(1, 2, figsize=(10, 3.8))
    train = sorted(train_losses)
    if train:
        losses.plot([epoch_number(e) for e in train], [train_losses[e] for e in train], marker="o", label="train loss")
    losses.plot(shown, [history[e].get("val/loss", float("nan")) for e in epochs], marker="o", label="validation loss")
    losses.set_xlabel("epoch")
    losses.set_ylabel("loss")
    losses.set_title("Loss")
    for key, label in (("val/rouge1", "ROUGE-1"), ("val/rouge2", "ROUGE-2"), ("val/rougeL", "ROUGE-L")):
        if any(key in history[e] for e in epochs):
            rouge.plot(shown, [history[e].get(key, float("nan")) for e in epochs], marker="o", label=label)
    rouge.set_xlabel("epoch")
    rouge.set_ylabel("Spanish ROUGE F1 (0-100)")
    rouge.set_title("Validation ROUGE")
    if best_epoch is not None:
        for axes in (losses, rouge):
            axes.axvline(best_epoch, color="grey", linestyle="--", linewidth=1)
        rouge.annotate(
            f"best ({monitor or 'monitor'}): epoch {best_epoch}",
            xy=(best_epoch, rouge.get_ylim()[1]),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=8,
            color="dimgrey",
        )
    for axes in (losses, rouge):
        axes.legend(fontsize=8)
        axes.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_file(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110)
    plt.close(figure)
    return True
