"""Every serving benchmark in one go, then the comparison table and the README section.

    .venv/bin/python -m bench.run [--quick] [--skip b4,b3]

Steps: install the peers' environments (cached outside the repository), B1 model hop and B4
batching (``bench.model_hop``), B3 end to end with B5's ablation (``bench.gateway_e2e``), B2
(``feature_lookup.py``) and B6 (``pipeline_overhead.py``), then ``bench.report`` prints the
tables, writes them with the plots to ``bench/results/`` and copies the latest to
``bench/latest/`` (committed) and into README.md's Performance section.

``--quick`` is the few-minutes check: B1 and B3 only, every contender, one short repetition; it
prints the comparison table and writes it to ``bench/results/quick/``, leaving the published
tables alone (one repetition has no spread to publish). A step that fails is reported and the
others still run; the command exits 1 when one failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
RESULTS = ROOT / "bench" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few minutes: short runs")
    parser.add_argument("--skip", default="", help="comma-separated: b1, b2, b3, b4, b6")
    parser.add_argument(
        "--no-readme",
        dest="readme",
        action="store_false",
        help="leave README's Performance as it is",
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    results = RESULTS / "quick" if args.quick else RESULTS
    if args.quick:
        skip |= {"b2", "b4", "b6"}
    common = ["--quick"] if args.quick else []
    common += ["--out", str(results)]
    steps = [("peer environments", [PY, "-m", "bench.peers.envs"])]
    if "b1" not in skip or "b4" not in skip:
        extra = [f"--skip-{b}" for b in ("b1", "b4") if b in skip]
        title = " + ".join(t for b, t in (("b1", "B1 model hop"), ("b4", "B4 batching"))
                           if b not in skip)  # fmt: skip
        steps.append((title, [PY, "-m", "bench.model_hop", *common, *extra]))
    if "b3" not in skip:
        title = "B3 end to end" + ("" if args.quick else " + B5 overheads")
        steps.append((title, [PY, "-m", "bench.gateway_e2e", *common]))
    # B2 and B6 print and write their own tables.
    if "b2" not in skip:
        b2 = ["--json", str(results / "b2_feature_lookup.json")]
        steps.append(("B2 feature lookup", [PY, "bench/feature_lookup.py", *b2]))
    if "b6" not in skip:
        b6 = ["--repeats", "3", "--json", str(results / "b6_pipeline_overhead.json")]
        steps.append(("B6 pipeline overhead", [PY, "bench/pipeline_overhead.py", *b6]))
    report = [PY, "-m", "bench.report", "--results", str(results)]
    if not args.quick:
        report += ["--publish", str(ROOT / "bench" / "latest")]
        if args.readme:
            report.append("--readme")
    failed = []
    for title, argv in steps:
        started = time.monotonic()
        print(f"==> {title}", file=sys.stderr, flush=True)
        if subprocess.run(argv, cwd=ROOT).returncode != 0:
            failed.append(title)
        print(f"==> {title}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    subprocess.run(report, cwd=ROOT, check=True)
    if failed:
        print(f"error: failed: {', '.join(failed)} (see above)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
