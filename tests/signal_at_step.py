"""Run ``scripts/train.py`` and send a signal at a fixed point of the run.

    SIGNAL=KILL STEP=7 python tests/signal_at_step.py fit --config ...          # after training step 7
    SIGNAL=TERM AT=val:0:2 python tests/signal_at_step.py fit ...                # during epoch 0's validation batch 2
    SIGNAL=TERM AT=test:1 python tests/signal_at_step.py test ...                # after test batch 1 (predict:1 too)
    SIGNAL=TERM AT=setup python tests/signal_at_step.py fit ...                  # in the model's setup, before any batch
    SIGNAL=TERM AT=report python tests/signal_at_step.py fit ...                 # after training, as the report is printed
    SIGNAL=TERM STEP=2 SIGNAL_RANK=1 SIGNAL_TARGET=group EXIT_CODES=codes.txt python tests/signal_at_step.py fit ...

A deterministic stand-in for a scheduler: the signal is real (SIGKILL cannot be caught; SIGTERM goes through the
handlers a preempted job meets), only its moment is fixed, so a test can compare with an uninterrupted run.
``SIGNAL_RANK`` picks the rank that sends it (default 0); ``SIGNAL_TARGET=group`` sends it to the whole process
group, as SLURM does, instead of to that rank alone. ``EXIT_CODES`` names a file where every rank appends
"rank exit-code" when it exits.
"""

import os
import signal

from resumen.lightning_modules.seq2seq import Seq2SeqSummarizer
from resumen.app.train import ResumenCLI, main

SIGNAL = getattr(signal, f"SIG{os.environ['SIGNAL']}")
AT = os.environ.get("AT") or f"train:{os.environ['STEP']}"
STAGE, *WHERE = AT.split(":")
RANK = int(os.environ.get("SIGNAL_RANK", "0"))
GROUP = os.environ.get("SIGNAL_TARGET", "self") == "group"


def send(module) -> None:
    if module.global_rank != RANK or getattr(module, "_signalled", False):
        return
    module._signalled = True
    if GROUP:
        os.killpg(os.getpgid(0), SIGNAL)
    else:
        os.kill(os.getpid(), SIGNAL)


def after(hook_name: str, when) -> None:
    original = getattr(Seq2SeqSummarizer, hook_name)

    def hook(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if when(self, *args):
            send(self)
        return result

    setattr(Seq2SeqSummarizer, hook_name, hook)


if STAGE == "train":
    after("on_train_batch_end", lambda m, *a: m.global_step == int(WHERE[0]))
elif STAGE == "val":
    after("validation_step", lambda m, batch, index: not m.trainer.sanity_checking and m.current_epoch == int(WHERE[0]) and index == int(WHERE[1]))
elif STAGE in ("test", "predict"):
    after(f"{STAGE}_step", lambda m, batch, index, *rest: index == int(WHERE[0]))
elif STAGE == "setup":
    after("setup", lambda m, *a: True)
elif STAGE == "report":
    original_after_fit = ResumenCLI.after_fit

    def after_fit_signalled(self) -> None:
        send(self.model)
        original_after_fit(self)

    ResumenCLI.after_fit = after_fit_signalled


def record_exit(code) -> None:
    if os.environ.get("EXIT_CODES"):
        with open(os.environ["EXIT_CODES"], "a", encoding="utf-8") as handle:
            handle.write(f"{os.environ.get('LOCAL_RANK', '0')} {code}\n")


try:
    main()
except SystemExit as exit_:
    record_exit(exit_.code)
    raise
record_exit(0)
