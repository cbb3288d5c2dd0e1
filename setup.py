"""Installable metarl distribution: the torch-free bundle runtime (base install, for the robot),
and with the ``train`` extra the meta-learning core, PyBullet task suite and ONNX export.

The ROS 2 package lives in ``ros2_ws/src/metarl_ros`` and is installed beside this one
(``make setup`` does both); it reaches learning only through ``metarl_runtime.model_runtime``.
"""

from glob import glob

from setuptools import find_packages, setup

ROS_WHEELS = [
    # ROS 2 Kilted as pip wheels (Python 3.11). On a robot the same code runs on an
    # apt-installed ROS 2, where these come from the distribution instead.
    "ros-rclpy==9.1.2",
    "ros-rmw-fastrtps-cpp==9.3.3",
    "ros-sensor-msgs==5.5.1",
    "ros-std-msgs==5.5.1",
    "ros-geometry-msgs==5.5.1",
    "ros-trajectory-msgs==5.5.1",
    "ros-nav-msgs==5.5.1",
    "ros-diagnostic-msgs==5.5.1",
    "ros-std-srvs==5.5.1",
    "ros-lifecycle-msgs==2.3.0",
    "ros-rosgraph-msgs==2.3.0",
    "ros-builtin-interfaces==2.3.0",
    "ros-rcl-interfaces==2.3.0",
]

TOP_LEVEL_PACKAGES = ("sim", "metarl_runtime", "metarl_core", "export", "experiments", "benchmarks", "metarl")
"""The floors, lowest first (docs/architecture.md): a package imports only those before it."""

TRAIN_REQUIRES = [
    # torch is a range so that GPU users keep their CUDA build.
    "torch>=2.3",
    "gymnasium>=1.0",
    "pybullet>=3.2.6",
    "onnx>=1.16",
    "onnxscript>=0.2",
    "tqdm>=4.66",
    "matplotlib>=3.8",
    "imageio>=2.34",
    "tensorboard>=2.16",
]
"""Meta-training, the PyBullet task suite, plots and ONNX export: `pip install "metarl[train]"`."""

setup(
    name="metarl",
    version="0.1.0",
    description="Meta-learned adaptive control for robots: PyBullet meta-training, ONNX bundles, ROS 2.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[f"{top}{sub}" for top in TOP_LEVEL_PACKAGES for sub in ("", ".*")]),
    # The base install is the robot's: what the torch-free runtime (metarl_runtime) and the
    # adaptive_controller node import. Training, simulation, plots and ONNX export: `.[train]`.
    install_requires=[
        "numpy>=1.24",
        "onnxruntime>=1.18",
        "pyyaml>=6.0",
        "cryptography>=42",  # Ed25519 bundle signatures: the robot verifies (metarl_runtime.bundle_signature)
    ],
    extras_require={
        "train": TRAIN_REQUIRES,
        "ros": ROS_WHEELS,
        # colcon: the tests build the workspace from the repository root, as a robot user does.
        "dev": ["pytest>=8", "ruff>=0.6", "hypothesis>=6.100", "pytest-timeout>=2.3", "colcon-common-extensions>=0.3"],
        "ray": ["ray>=2.40"],
        "logs": ["rosbags>=0.11.0"],  # `metarl eval --bag` and the bag recorder: rosbag2 (MCAP, sqlite3) + CDR, no ROS
    },
    # What colcon-ros expects of an ament_python package (its ament index marker and package.xml),
    # and the training configs, so that train_sim.launch.py finds them from any directory.
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/metarl"]),
        ("share/metarl", ["package.xml"]),
        ("share/metarl/configs", sorted(glob("configs/*.yaml"))),
    ],
    entry_points={"console_scripts": ["metarl=metarl.cli:main"]},
)
