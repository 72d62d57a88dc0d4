"""The ament_python package layout: files a ROS 2 install (colcon) or pip needs, and node YAML vs the parameters
the nodes really declare. (Python 3.10 syntax is checked by the linter: ruff with target-version py310.)"""
import ast
import importlib
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NODES = ["sim_bridge", "actor", "learner", "recorder"]


def test_ament_python_layout():
    for rel in ["package.xml", "setup.py", "setup.cfg", "resource/symphony_ros", "symphony_ros/__init__.py",
                "launch/train_sim.launch.py", "msg/EnvStep.msg", "interfaces/package.xml", "README.md", ".ci/run"]:
        assert (ROOT / rel).exists(), rel
    pkg = ET.parse(ROOT / "package.xml").getroot()
    assert pkg.get("format") == "3" and pkg.findtext("name") == "symphony_ros"
    assert pkg.find("export/build_type").text == "ament_python"
    deps = {e.text for e in pkg.findall("exec_depend")}
    assert {"rclpy", "std_msgs", "sensor_msgs", "std_srvs", "symphony_ros_interfaces"} <= deps
    cfg = (ROOT / "setup.cfg").read_text()
    assert "script_dir=$base/lib/symphony_ros" in cfg and "install_scripts=$base/lib/symphony_ros" in cfg


def _declared_parameters(node: str, tmp_path: Path) -> set[str]:
    """The parameters the real node declares (built in a private rclpy context, not started)."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy not installed (ROS 2 optional)")
    from rclpy.parameter import Parameter
    overrides = {"sim_bridge": [Parameter("env", value="InvertedPendulum-v5")],
                 "actor": [Parameter("autostart", value=False)],
                 "learner": [Parameter("autostart", value=False)],
                 "recorder": [Parameter("output", value=str(tmp_path / "bag"))]}[node]
    module = importlib.import_module(f"symphony_ros.nodes.{node}")
    cls = next(v for k, v in vars(module).items() if k.endswith("Node") and isinstance(v, type)
               and v.__module__ == module.__name__)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        n = cls(context=ctx, parameter_overrides=overrides)
        try:
            return set(n.list_parameters([], 0).names)
        finally:
            n.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)


@pytest.mark.parametrize("node", NODES)
def test_node_executables_and_yaml_match_declared_parameters(node, tmp_path):
    script = ROOT / "scripts" / node
    assert script.is_file() and os.access(script, os.X_OK)
    imports = {(n.module, a.name) for n in ast.walk(ast.parse(script.read_text())) if isinstance(n, ast.ImportFrom)
               for a in n.names}
    assert (f"symphony_ros.nodes.{node}", "main") in imports          # the wrapper runs that node's main()
    data = yaml.safe_load((ROOT / "config" / f"{node}.yaml").read_text())
    params = data["/**"]["ros__parameters"]             # '/**' so launch overrides win (launch_ros#233)
    declared = _declared_parameters(node, tmp_path)
    unknown = set(params) - declared
    assert not unknown, f"config/{node}.yaml sets undeclared parameters {unknown}"


def test_pip_install_puts_the_ros_layout_into_the_prefix():
    """A non-editable pip install (tools/setup.sh) lays out what `ros2 run` / launch_ros look for."""
    marker = Path(sys.prefix) / "share" / "ament_index" / "resource_index" / "packages" / "symphony_ros"
    if not marker.exists():
        pytest.skip(f"symphony_ros is not pip-installed into {sys.prefix} (editable or source checkout)")
    for node in NODES:
        exe = Path(sys.prefix) / "lib" / "symphony_ros" / node
        assert exe.is_file() and os.access(exe, os.X_OK), exe
    share = Path(sys.prefix) / "share" / "symphony_ros"
    assert (share / "package.xml").is_file() and (share / "launch" / "train_sim.launch.py").is_file()
    assert {p.name for p in (share / "config" / "presets").glob("*.yaml")} == \
        {"s3.yaml", "se.yaml", "s2.yaml", "ed.yaml", "s2_tilde.yaml"}
