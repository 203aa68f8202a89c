"""Cost of masking a run's secrets in its output.log (a benchmark, not a test).

Writes an output.log of --mib MiB of log-like lines (one line in --every carries a
secret), then times ``providers.redaction.redact_file`` as the local supervisor calls
it after the command exits, with --secrets values of 16-64 characters. Prints the
time, the throughput and the peak RSS of this process (memory stays bounded by the
chunk size, not the file size).

    python bench/redaction.py --mib 256 --secrets 10
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from providers import redaction  # noqa: E402


def write_log(path: Path, mib: int, secrets: list[str], every: int) -> int:
    rng = random.Random(1)
    line = "2024-05-01 12:00:00.000 | INFO    | Flow run 'clever-fox' - processed batch {} of rows ok\n"
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        i = 0
        while written < mib << 20:
            text = line.format(i) if i % every else f"connecting with token={rng.choice(secrets)} to db\n"
            f.write(text)
            written += len(text)
            i += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--secrets", type=int, default=10)
    parser.add_argument("--every", type=int, default=1000, help="one line in this many carries a secret")
    args = parser.parse_args()
    rng = random.Random(2)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    secrets = ["".join(rng.choice(alphabet) for _ in range(rng.randint(16, 64))) for _ in range(args.secrets)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "output.log"
        size = write_log(path, args.mib, secrets, args.every)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        redaction.redact_file(path, redaction.normalise(secrets))
        elapsed = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        leaked = sum(path.read_bytes().count(s.encode()) for s in secrets)
    print(f"{size / 2**20:.0f} MiB, {args.secrets} secrets, one line in {args.every} with a secret: "
          f"{elapsed:.2f} s ({size / 2**20 / elapsed:.0f} MiB/s), peak RSS {rss_after / 1024:.0f} MiB "
          f"(before: {rss_before / 1024:.0f} MiB), secrets left: {leaked}")  # fmt: skip


if __name__ == "__main__":
    main()
