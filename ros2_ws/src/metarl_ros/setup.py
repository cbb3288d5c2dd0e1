"""ament_python package: installable with colcon, or with ``pip install -e`` beside metarl."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "metarl_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="metarl maintainers",
    maintainer_email="maintainers@metarl.dev",
    description="metarl adaptive controller, sim bridge and meta-training nodes for ROS 2",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "adaptive_controller = metarl_ros.adaptive_controller:main",
            "sim_bridge = metarl_ros.sim_bridge:main",
            "meta_train = metarl_ros.meta_train:main",
            "payload_switch_session = experiments.payload_switch_session:main",
            "terrain_change_session = experiments.terrain_change_session:main",
            "bag_recorder = metarl_ros.bag_recorder:main",
        ],
    },
)
