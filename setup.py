"""symphony_ros: ament_python package, also pip-installable (extras: ros, sim, bags, export, dev)."""
import xml.etree.ElementTree as ET
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "symphony_ros"
NODES = ["sim_bridge", "actor", "learner", "recorder", "task", "mujoco_driver"]
EXPORT = ["onnx>=1.17", "onnxscript>=0.5", "onnxruntime>=1.20"]

setup(
    name="symphony-ros",
    version=ET.parse("package.xml").getroot().findtext("version").strip(),   # the one version number
    description="Symphony actor-critic (arXiv 2512.10477) for ROS 2: train a humanoid on the robot",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/config/robots", glob("config/robots/*.yaml")),
        (f"share/{PACKAGE}/config/presets", glob("config/presets/*.yaml")),
        (f"share/{PACKAGE}/msg", glob("msg/*.msg")),
        # `ros2 run` and launch_ros look for executables in lib/<package> only (pip ignores setup.cfg there)
        (f"lib/{PACKAGE}", [f"scripts/{n}" for n in NODES]),
    ],
    install_requires=[
        "numpy>=1.21",
        "pyyaml>=5.4",
        "tqdm>=4.60",
        "matplotlib>=3.5",
        "torch>=2.1,<3",  # a range, so a Jetson's own torch build is accepted; dev/CI pin torch==2.13.0 first
    ],
    extras_require={
        # ROS 2 Kilted from PyPI (x86_64 only). On a robot, ROS 2 comes from the system: do not install this extra.
        "ros": ["ros-rclpy[fastrtps]~=9.1", "ros-std-msgs~=5.5", "ros-sensor-msgs~=5.5", "ros-std-srvs~=5.5",
                "ros-nav-msgs~=5.5", "ros-lifecycle-msgs~=2.3", "ros-rosgraph-msgs~=2.3"],
        # the same set from ROS 2 Jazzy (rclpy 7.1, as on JetPack 7), for testing against it: tools/setup.sh jazzy.
        # ros-jazzy-* metapackages pin the matching ros-* wheels; exclusive with "ros" (pip reports the conflict).
        "ros-jazzy": ["ros-jazzy-rclpy[fastrtps]~=7.1.6", "ros-jazzy-std-msgs~=5.3.6", "ros-jazzy-sensor-msgs~=5.3.6",
                      "ros-jazzy-std-srvs~=5.3.6", "ros-jazzy-nav-msgs~=5.3.6", "ros-jazzy-lifecycle-msgs~=2.0.3",
                      "ros-jazzy-rosgraph-msgs~=2.0.3"],
        "sim": ["gymnasium[mujoco]>=1.0"],
        "bags": ["rosbags>=0.11.9,<0.12", "mcap>=1.2", "mcap-ros2-support>=0.5"],
        # `symphony-ros export --format onnx` (torch.export-based exporter) and the ONNX runtime policy
        "export": EXPORT,
        "dev": ["pytest>=7", "pytest-timeout>=2", "ruff>=0.8", *EXPORT],
        # the learning campaign's peer (bench/learning/sac_peer.py) and its protocol test; not needed to run the package
        "bench": ["stable-baselines3==2.9.2", "pandas>=2"],
    },
    # node executables are the scripts/ wrappers above (lib/symphony_ros, as `ros2 run` expects), not on PATH
    entry_points={
        "console_scripts": ["symphony-ros = symphony_ros.cli:main"],
        # task plugins (symphony_ros/tasks/loader.py): a lab's package adds its own to this group
        "symphony_ros.tasks": ["humanoid_stand = symphony_ros.tasks.humanoid:HumanoidStand",
                               "humanoid_walk = symphony_ros.tasks.humanoid:HumanoidWalk",
                               "pendulum_balance = symphony_ros.tasks.pendulum:PendulumBalance"],
    },
    zip_safe=True,
    tests_require=["pytest"],
)
