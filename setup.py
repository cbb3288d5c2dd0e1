"""Installable metarl distribution: meta-learning core, PyBullet task suite, ONNX export.

The ROS 2 package lives in ``ros2_ws/src/metarl_ros`` and is installed beside this one
(``make setup`` does both); it reaches learning only through ``export.runtime``.
"""

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

setup(
    name="metarl",
    version="0.1.0",
    description="Meta-learned adaptive control for robots: PyBullet meta-training, ONNX bundles, ROS 2.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["metarl_core", "metarl_core.*", "sim", "sim.*", "export", "export.*"]),
    install_requires=[
        # torch is a range so that GPU users keep their CUDA build.
        "torch>=2.3",
        "numpy>=1.24",
        "gymnasium>=1.0",
        "pybullet>=3.2.6",
        "onnxruntime>=1.18",
        "onnx>=1.16",
        "onnxscript>=0.2",
        "pyyaml>=6.0",
        "tqdm>=4.66",
        "matplotlib>=3.8",
        "imageio>=2.34",
        "tensorboard>=2.16",
    ],
    extras_require={
        "ros": ROS_WHEELS,
        "dev": ["pytest>=8", "ruff>=0.6", "hypothesis>=6.100", "pytest-timeout>=2.3"],
        "ray": ["ray>=2.40"],
    },
    entry_points={"console_scripts": ["metarl=metarl_core.cli:main"]},
)
