"""Count CPU instructions per appended event under valgrind: a figure the machine's load cannot move.

    $ /work/venv/bin/python bench/instructions.py            # needs valgrind on PATH; ~2 minutes
    $ /work/venv/bin/python bench/instructions.py --ensemble # per in-memory event instead; ~3 minutes

Wall-clock rates on a shared VM swing by 1.5x within a minute (bench/log.py
prints every run for that reason). Callgrind counts instructions instead, so
two versions of the write path can be compared exactly. Each figure is the
difference between appending 150 and 50 turns of 30 synthetic events through
the Run path (the same loop as bench/log.py), so start-up and imports cancel
out. It is run twice: with the engine's real Ed25519 keys, and with a stand-in
signer returning a constant, which leaves everything but signing. PYTHONHASHSEED is
fixed so that dict layouts, and with them the counts, repeat from run to run.
Instructions are not time (signing runs at a higher IPC than Python), but a
change that removes instructions from the rest of the path shows here first.

With ``--ensemble`` it counts the in-memory path instead (``simulate_spec``, what
``bench/ensemble.py`` times): three passes over the study's 3 regimes x 12 seeds
minus one pass, over the events of two passes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

APPEND = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, {bench!r})
import log
from simledger.ledger.run import Run

class ConstantSigner:
    def sign(self, message):
        return bytes(64)

with tempfile.TemporaryDirectory() as tmp:
    run = Run.create(Path(tmp) / "run.db", agents=log.AGENTS, seed=1)
    if sys.argv[2] == "constant":
        run._signers = {{name: ConstantSigner() for name in run._signers}}
    log.append_synthetic_turns(run, int(sys.argv[1]))
    run.close()
"""


ENSEMBLE = """
import sys
from simledger.study.experiment import simulate_spec
from simledger.study.sweep import study_specs

specs = study_specs(seeds=range(1001, 1013))
for _ in range(int(sys.argv[1])):
    events = sum(simulate_spec(spec)[1] for spec in specs)
print(events)
"""


def count_instructions(script: Path, *args: str) -> tuple[int, str]:
    """Return the instructions valgrind counts for running ``script`` with ``args`` (whole process), and its output."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/callgrind.out", sys.executable,
             str(script), *args],
            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    match = re.search(r"Collected : (\d+)", out.stderr)
    if match is None:
        raise SystemExit(f"valgrind printed no instruction count:\n{out.stderr[-2000:]}")
    return int(match.group(1)), out.stdout


def print_ensemble_count(tmp: str) -> None:
    """Print the instructions per in-memory event (three passes minus one, over two passes' events)."""
    script = Path(tmp) / "ensemble.py"
    script.write_text(ENSEMBLE)
    (once, _), (thrice, printed) = count_instructions(script, "1"), count_instructions(script, "3")
    events = int(printed.split()[-1])
    per_event = (thrice - once) / (2 * events)
    print(f"instructions per in-memory event ({events:,} events a pass: 3 regimes x 12 seeds): {per_event:,.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, nargs=2, default=(50, 150), metavar=("FEW", "MANY"))
    parser.add_argument("--ensemble", action="store_true", help="count per in-memory event instead")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    if args.ensemble:
        with tempfile.TemporaryDirectory() as tmp:
            print_ensemble_count(tmp)
        return 0
    few, many = args.turns
    events = (many - few) * 30
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "append.py"
        script.write_text(APPEND.format(bench=str(Path(__file__).resolve().parent)))
        per_event = {}
        for signer in ("ed25519", "constant"):
            extra = count_instructions(script, str(many), signer)[0] - count_instructions(script, str(few), signer)[0]
            per_event[signer] = extra / events
    print(f"instructions per appended event ({events:,} events: turns {few + 1}..{many} of 30 events):")
    print(f"  whole write path (Ed25519 signing)  {per_event['ed25519']:>10,.0f}")
    print(f"  everything but signing              {per_event['constant']:>10,.0f}")
    print(f"  signing alone (difference)          {per_event['ed25519'] - per_event['constant']:>10,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
