"""symphony_ros: the Symphony actor-critic (Ishuov et al., arXiv 2512.10477) as a ROS 2 package."""
from __future__ import annotations


def _version() -> str:
    """The package version: written once, in package.xml (setup.py and the interface package read it from there)."""
    from importlib.metadata import PackageNotFoundError, version
    from pathlib import Path
    source = Path(__file__).resolve().parents[1] / "package.xml"
    if source.is_file():   # a source checkout (also the editable/colcon --symlink-install case)
        import xml.etree.ElementTree as ET
        return ET.parse(source).getroot().findtext("version", "").strip()
    try:
        return version("symphony-ros")
    except PackageNotFoundError:
        return "unknown"


__version__ = _version()
