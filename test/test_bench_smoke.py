"""The benchmark scripts keep working (no timing is asserted): bench_core's --check compares one SymphonyAgent update
with the bench-only plain implementation of the same maths on the same batch and noise (exit 1 on a mismatch)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_core_plain_reference_matches_the_agent():
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_core.py"), "--check", "--threads", "1"],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count("PASS") >= 2
