#!/usr/bin/env python3
"""Rewrite README.md's topic table from symphony_ros.contract (the one place topics are defined); a test checks it."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from symphony_ros import contract  # noqa: E402

readme = ROOT / "README.md"
text = readme.read_text()
start = text.index("| topic | type | from → to | QoS |")
end = text.index("\n\n", start)
readme.write_text(text[:start] + contract.topic_table_markdown() + text[end:])
print("README.md topic table updated")
