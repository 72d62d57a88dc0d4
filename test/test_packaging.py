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


def test_one_version_number():
    """package.xml holds the version; setup.py, the interface package and symphony_ros.__version__ follow it."""
    import symphony_ros
    version = ET.parse(ROOT / "package.xml").getroot().findtext("version").strip()
    assert ET.parse(ROOT / "interfaces" / "package.xml").getroot().findtext("version").strip() == version
    assert symphony_ros.__version__ == version
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed
    for dist in ("symphony-ros", "symphony-ros-interfaces"):
        try:
            assert installed(dist) == version, dist
        except PackageNotFoundError:   # a colcon build on a robot installs no pip metadata for the interfaces
            pass


def test_readme_topic_table_is_the_contract():
    """README's topic table is generated from symphony_ros.contract (the one place topics are defined)."""
    from symphony_ros import contract
    assert contract.topic_table_markdown() in (ROOT / "README.md").read_text()


def test_pure_code_never_imports_rclpy():
    """core/, envs/, control/, learner/, robot/, tasks/, training/ (headless), the contract, the graph definition and
    the bag file code run without ROS:
    import them in a fresh interpreter where rclpy cannot be imported at all."""
    import subprocess
    code = ("import sys\n"
            "class NoROS:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('rclpy', 'rosidl_runtime_py', 'symphony_ros_interfaces'):\n"
            "            raise ImportError(f'{name} imported by pure code')\n"
            "sys.meta_path.insert(0, NoROS())\n"
            "import pkgutil, importlib, symphony_ros\n"
            "pure = ('core', 'envs', 'control', 'learner', 'robot', 'tasks', 'training.headless',\n"
            "        'training.evaluation', 'training.progress', 'training.session', 'contract', 'graph',\n"
            "        'bags.reader', 'bags.recorder', 'bags.analysis', 'bags.from_bag', 'bags.typestore',\n"
            "        'bags.replay', 'bags.convert', 'bags.distro')\n"
            "for name in pure:\n"
            "    mod = importlib.import_module('symphony_ros.' + name)\n"
            "    if hasattr(mod, '__path__'):\n"
            "        for m in pkgutil.walk_packages(mod.__path__, mod.__name__ + '.'):\n"
            "            importlib.import_module(m.name)\n"
            "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
