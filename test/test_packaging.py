"""The ament_python package layout: files a ROS 2 install (colcon) or pip needs, node YAML vs declared parameters,
and node code that still compiles on Python 3.10 (a Jetson's ROS 2 Humble)."""
import os
import shutil
import subprocess
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


@pytest.mark.parametrize("node", NODES)
def test_node_executables_and_yaml_match_declared_parameters(node):
    script = ROOT / "scripts" / node
    assert script.is_file() and os.access(script, os.X_OK) and f"symphony_ros.nodes.{node} import main" in \
        script.read_text()
    data = yaml.safe_load((ROOT / "config" / f"{node}.yaml").read_text())
    params = data["/**"]["ros__parameters"]             # '/**' so launch overrides win (launch_ros#233)
    import re
    src = (ROOT / "symphony_ros" / "nodes" / f"{node}.py").read_text()
    declared = set(re.findall(r'(?:ParamSpec|declare_parameter)\(\s*"([^"]+)"', src))
    if "ARRAY_PARAMS" in src:   # string-array parameters declared from a {name: description} table
        declared |= set(getattr(__import__(f"symphony_ros.nodes.{node}", fromlist=["x"]), "ARRAY_PARAMS"))
    if "config_param_specs(" in src:
        from symphony_ros.core.config import FIELDS
        declared |= {f"symphony.{k}" for k in FIELDS}
    assert declared, f"found no declared parameters in nodes/{node}.py"
    unknown = set(params) - declared
    assert not unknown, f"config/{node}.yaml sets undeclared parameters {unknown}"


def test_node_code_compiles_on_python_3_10():
    candidates = [str(p) for p in sorted(Path("/root/.pyenv/versions").glob("3.10*/bin/python3.10"))] + \
        [shutil.which("python3.10") or ""]
    py310 = next((c for c in candidates if c and subprocess.run([c, "--version"], capture_output=True).returncode
                  == 0), None)
    if not py310:
        pytest.skip("no python3.10 interpreter on this machine to check Humble/Jetson compatibility")
    code = ("import pathlib,sys\nbad=[]\nfor p in list(pathlib.Path('symphony_ros').rglob('*.py'))+"
            "list(pathlib.Path('launch').glob('*.py')):\n"
            "    try: compile(p.read_text(), str(p), 'exec')\n"
            "    except SyntaxError as e: bad.append(f'{p}: {e}')\nprint('\\n'.join(bad)); sys.exit(1 if bad else 0)")
    r = subprocess.run([str(py310), "-c", code], cwd=ROOT, capture_output=True, text=True, env={"PATH": "/usr/bin"})
    assert r.returncode == 0, r.stdout + r.stderr


def test_pip_install_puts_the_ros_layout_into_the_prefix():
    """A non-editable pip install (tools/setup.sh) lays out what `ros2 run` / launch_ros look for."""
    import sys
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
