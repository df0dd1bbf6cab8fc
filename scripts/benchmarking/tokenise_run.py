"""One tokenisation measurement in a fresh process (so its peak memory is its own): cold, then cached.

    python -m scripts.benchmarking.tokenise_run --model DIR --train FILE --validation FILE --cache DIR
"""

from __future__ import annotations

import argparse
import json
import time

from scripts.benchmarking.measure import peak_rss_gib
from scripts.benchmarking.runners import ours_datamodule


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--model", "--train", "--validation", "--cache"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    files = {"train": args.train, "validation": args.validation}
    seconds = []
    for _ in range(2):  # the second run finds the tokenised data in the datasets cache
        data = ours_datamodule(args.model, files, 8, cache_dir=args.cache)
        start = time.perf_counter()
        data.setup("fit")
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"rows": len(data.datasets["train"]), "seconds_cold": seconds[0], "seconds_cached": seconds[1], "peak_rss_gib": peak_rss_gib()}))


if __name__ == "__main__":
    main()
