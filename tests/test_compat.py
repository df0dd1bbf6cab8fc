"""Each Lightning (and torch) internal resumen touches, checked against the installed versions: an upgrade that
moves one fails here, naming it, before a run does."""

import importlib
import inspect

import lightning as L
import pytest
import torch

from resumen.lightning_modules import compat


def resolve(module: str, dotted: str):
    target = importlib.import_module(module)
    for part in dotted.split("."):
        target = getattr(target, part)
    return target


@pytest.mark.parametrize("owner, method, arguments", compat.OVERRIDDEN, ids=[f"{o.rsplit('.', 1)[1]}.{m}" for o, m, _ in compat.OVERRIDDEN])
def test_each_overridden_private_method_still_exists_with_the_arguments_we_pass(owner, method, arguments):
    module, name = owner.rsplit(".", 1)
    parameters = list(inspect.signature(getattr(resolve(module, name), method)).parameters)
    assert parameters[: len(arguments)] == list(arguments), parameters


@pytest.mark.parametrize("module, name", compat.TORCH_INTERNALS, ids=[n for _, n in compat.TORCH_INTERNALS])
def test_each_torch_internal_the_safe_loader_uses_still_exists(module, name):
    assert resolve(module, name) is not None


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.seen: list = []

    def training_step(self, batch, batch_idx):
        self.seen.append((compat.should_update_logs(self.trainer), compat.training_epoch_last_batch(self.trainer)))
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.seen.append(("val", compat.fit_validation_in_progress(self.trainer)))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader(count: int):
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(count, 2)), batch_size=1)


def test_the_loop_state_we_read_is_where_we_read_it():
    module = _Tiny()
    trainer = L.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=2,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, loader(4), loader(3))
    steps = [entry for entry in module.seen if entry[0] != "val"]
    assert [logged for logged, _ in steps] == [False, True, False, True]  # every 2nd step is logged
    assert [last for _, last in steps] == [False, False, False, True]  # the epoch's last batch
    assert [progress for kind, progress in module.seen if kind == "val"] == [True, True, False]  # before the last


def test_marking_a_stop_stops_the_loop_at_its_next_safe_point():
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    class StopAtTwo(_Tiny):
        def on_train_batch_end(self, outputs, batch, batch_idx):
            if batch_idx == 1:
                compat.mark_stop_requested(self.trainer)
                assert compat.stop_requested(self.trainer)

    module = StopAtTwo()
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(SIGTERMException):
        trainer.fit(module, loader(5))
    assert trainer.global_step == 2


def test_the_saved_validation_position_is_where_a_resume_reads_it(tmp_path):
    module = _Tiny()
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, loader(2), loader(2))
    trainer.save_checkpoint(tmp_path / "a.ckpt")
    checkpoint = torch.load(tmp_path / "a.ckpt", weights_only=True)
    assert compat.VAL_PROGRESS in checkpoint["loops"]["fit_loop"]
    compat.restart_validation_from_first_batch(checkpoint)
    assert checkpoint["loops"]["fit_loop"][compat.VAL_PROGRESS]["current"] == {"ready": 1, "started": 1, "processed": 0, "completed": 0}


def test_a_loggers_version_is_set_before_it_makes_its_directory(tmp_path):
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    for logger in (TensorBoardLogger(tmp_path, name="x"), CSVLogger(tmp_path, name="y")):
        assert compat.logger_version(logger) is None
        compat.set_logger_version(logger, 7)
        assert logger.version == 7 and logger.log_dir.endswith("version_7")


def test_routes_put_first_answer_before_litserve_own():
    """The page and /models are ours: LitServer's constructor adds its own GET / ("litserve running") first."""
    import litserve as ls
    from fastapi.responses import PlainTextResponse
    from fastapi.routing import APIRoute
    from fastapi.testclient import TestClient

    class Echo(ls.LitAPI):
        def setup(self, device):
            pass

        def predict(self, x):
            return x

    server = ls.LitServer(Echo(), accelerator="cpu")
    client = TestClient(server.app)
    assert "litserve" in client.get("/").text.lower()

    async def page():
        return PlainTextResponse("our page")

    compat.put_routes_first(server.app, [APIRoute("/", page, methods=["GET"])])
    assert client.get("/").text == "our page"
