"""Run ``scripts/train.py`` and send this process a signal once training reaches a given step.

    SIGNAL=KILL STEP=7 python tests/signal_at_step.py fit --config ...

A deterministic stand-in for a scheduler: the signal is real (SIGKILL cannot be caught; SIGTERM goes through the
handlers a preempted job meets), only its moment is fixed, so a test can compare with an uninterrupted run.
"""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lightning_modules.seq2seq import Seq2SeqSummarizer  # noqa: E402
from scripts.train import main  # noqa: E402

SIGNAL = getattr(signal, f"SIG{os.environ['SIGNAL']}")
STEP = int(os.environ["STEP"])
original = Seq2SeqSummarizer.on_train_batch_end


def on_train_batch_end(self, outputs, batch, batch_idx):
    original(self, outputs, batch, batch_idx)
    if self.global_step == STEP and not getattr(self, "_signalled", False):
        self._signalled = True
        os.kill(os.getpid(), SIGNAL)


Seq2SeqSummarizer.on_train_batch_end = on_train_batch_end
main()
