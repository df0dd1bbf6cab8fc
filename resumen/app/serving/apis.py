"""The LitServe APIs: what a worker process does with requests that were already checked (``requests.py``).

``SummarizeAPI`` (``POST /summarize``) batches concurrent requests: their articles are grouped by model and
generation settings, each group goes through the inference core (length-sorted batches, the model's own template,
``max_source_length`` and ``generation_config``), and every request gets its own summaries back, in order.
``ChatAPI`` (``POST /v1/chat/completions``, OpenAI's shape) summarises the last user message and streams the
summary token by token with greedy decoding (beam search streams the finished summary word by word: beams cannot
be shown before they are decided); ``ChatSpec`` checks each chat request in the HTTP process before it is queued or
its stream's 200 goes out. Both load every served model in ``setup``, in their own worker, which ends with the
server's main process (even a kill -9 of it).
"""

# No "from __future__ import annotations": LitServe reads decode_request's annotation as the request body type.
import time
from collections import defaultdict
from typing import Any

import litserve as ls
from fastapi import BackgroundTasks
from fastapi.responses import JSONResponse
from litserve.specs.openai import ChatCompletionRequest

from resumen.app.serving.requests import Limits, chat_job, summarize_request


def die_with_parent(parent: int | None = None) -> None:
    """Have the kernel end this process when its parent (``parent``, the server's main process, when given) ends,
    however it ends: a kill -9 of the server otherwise left its workers holding the port and serving the old models."""
    import ctypes
    import os
    import signal

    parent = os.getppid() if parent is None else parent
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux); elsewhere nothing happens
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before the line above
        os._exit(1)


class ChatSpec(ls.OpenAISpec):
    """OpenAI's chat route, with each request checked before LitServe queues it: a bad request (``n`` other than 1,
    an unknown model, an empty message, ``max_tokens: 0``) is a 4xx, never a 200 stream whose only event is an error."""

    def __init__(self, limits: Limits) -> None:
        """``limits``: the server's bounds, checked in the HTTP process."""
        super().__init__()
        self.limits = limits

    async def chat_completion(self, request: ChatCompletionRequest, background_tasks: BackgroundTasks):
        chat_job(request, self.limits)
        return await super().chat_completion(request, background_tasks)


class ModelsMixin:
    """Loading the served models in a worker (each worker holds its own copy)."""

    def configure(self, models: dict[str, str], options: dict[str, Any], limits: Limits) -> None:
        import os

        self.server_pid = os.getpid()
        self.model_paths = dict(models)
        self.options = dict(options)
        self.limits = limits

    def setup(self, device: str) -> None:
        import os

        from resumen.app.common import load_summarizer, model_spec

        if os.getpid() != self.server_pid:  # a worker process (not a test calling setup in its own process)
            die_with_parent(self.server_pid)
        self.summarizers = {}
        for name, spec in self.model_paths.items():
            path, backend, compute_type = model_spec(spec, self.options.get("backend", "torch"), self.options.get("compute_type"))
            self.summarizers[name] = load_summarizer(
                path,
                device,
                self.options.get("precision"),
                self.options.get("trust_remote_code", False),
                self.options.get("batch_size", 8),
                name=name,
                backend=backend,
                compute_type=compute_type,
            )
        self.timeout = float(self.options.get("timeout", 60))


class SummarizeAPI(ModelsMixin, ls.LitAPI):
    def __init__(self, models: dict[str, str], options: dict[str, Any], limits: Limits, max_batch_size: int = 1, batch_timeout: float = 0.0) -> None:
        """``models``: name -> path (or ``path@ctranslate2[:type]``); ``options``: how to load them (serve.py's);
        ``limits``: the bounds requests are checked against; ``max_batch_size``/``batch_timeout``: LitServe's batching."""
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout, api_path="/summarize")
        self.configure(models, options, limits)

    @property
    def decode_request(self):  # type: ignore[override]
        """LitServe makes this function's annotation the route's body type: the request class of this server's limits
        (a property, so the API pickles for its workers without that class; the worker receives the job dict)."""
        request_type = summarize_request(self.limits)

        def decode_request(request: request_type) -> dict[str, Any]:  # type: ignore[valid-type]
            return request if isinstance(request, dict) else request.job()

        return decode_request

    def batch(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(inputs)

    def predict(self, jobs: list[dict[str, Any]] | dict[str, Any]) -> list[dict[str, Any]] | dict[str, Any]:
        """One generation per (model, settings) group; a request's summaries do not depend on its neighbours."""
        if isinstance(jobs, dict):  # --max-batch-size 1: LitServe hands over one request, unbatched
            return self.predict([jobs])[0]
        groups: dict[tuple, list[tuple[int, int]]] = defaultdict(list)
        for j, job in enumerate(jobs):
            key = (job["model"], tuple(sorted(job["overrides"].items())))
            groups[key].extend((j, t) for t in range(len(job["texts"])))
        results: list[list[Any]] = [[None] * len(job["texts"]) for job in jobs]
        seconds = [0.0] * len(jobs)
        for (model, overrides), members in groups.items():
            summarizer = self.summarizers[model]
            texts = [jobs[j]["texts"][t] for j, t in members]
            start = time.perf_counter()
            summaries = summarizer.summarize(texts, **dict(overrides))
            elapsed = time.perf_counter() - start
            for (j, t), summary in zip(members, summaries):
                results[j][t] = summary
                seconds[j] = max(seconds[j], elapsed)
        return [{"job": job, "summaries": summaries, "seconds": s} for job, summaries, s in zip(jobs, results, seconds)]

    def unbatch(self, outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(outputs)

    def encode_response(self, output: dict[str, Any]) -> Any:  # LitServe makes the annotation the response model
        """The request's summaries; a 504 when its own summaries took longer than ``--timeout`` (each request's
        limit is its own: one slow request does not fail the requests batched with it)."""
        job, seconds = output["job"], round(output["seconds"], 3)
        if output["seconds"] > self.timeout:
            message = f"the summaries took {output['seconds']:.0f} s, longer than this server's {self.timeout:g} s (--timeout)"
            return JSONResponse({"error": message}, status_code=504)
        rows = [{"summary": s.summary, "input_tokens": s.input_tokens, "output_tokens": s.output_tokens, "truncated": s.truncated} for s in output["summaries"]]
        if job["single"]:
            return {**rows[0], "model": job["model"], "seconds": seconds}
        return {"summaries": rows, "model": job["model"], "seconds": seconds}


class ChatAPI(ModelsMixin, ls.LitAPI):
    def __init__(self, models: dict[str, str], options: dict[str, Any], limits: Limits) -> None:
        """``models``, ``options``, ``limits``: as ``SummarizeAPI``'s; OpenAI's chat spec, checked with ``limits``."""
        super().__init__(spec=ChatSpec(limits))
        self.configure(models, options, limits)

    def decode_request(self, request: Any) -> dict[str, Any]:
        return chat_job(request, self.limits)

    def predict(self, job: dict[str, Any]):
        summarizer = self.summarizers[job["model"]]
        counts: dict[str, int] = {}
        for piece in summarizer.stream(job["texts"][0], counts, **job["overrides"]):
            yield {"content": piece}
        # the usage the OpenAI response reports, after the last piece
        yield {
            "content": "",
            "prompt_tokens": counts["input_tokens"],
            "completion_tokens": counts["output_tokens"],
            "total_tokens": counts["input_tokens"] + counts["output_tokens"],
        }
