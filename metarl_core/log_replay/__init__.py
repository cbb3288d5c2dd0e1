"""Robot logs as a second world: score a bundle's adaptation offline from a recorded ROS 2 bag.

``metarl eval --bag PATH --bundle DIR`` reads a rosbag2 directory (MCAP or sqlite3 storage) or a
bare ``.mcap`` file (``bag_reading``), maps the sensor messages into the bundle's state and
reference vectors with the node's own code (``metarl_runtime.sensor_mapping``), puts them on the
control-period grid with the commands held from their log times (``log_transitions``), adapts as
the node would and scores the predictions (``log_scoring``), and writes a table and a plot
(``log_report``).

Why ``rosbags``: it is one pure-Python, actively maintained library that reads *and* writes
rosbag2 in both storages Humble to Kilted write (MCAP and sqlite3), bare ``.mcap`` files too, and
decodes ROS 2 CDR from the schemas stored in the bag, or its own type store for sqlite3 bags that
hold none, all without a ROS install: the scorer runs on a laptop, and the recorder writes with
the same library. ``mcap`` + ``mcap-ros2-support`` read MCAP only (no sqlite3, which Humble
records by default) and need a second package for writing rosbag2 metadata.

Nothing here imports torch or ROS; an MB model of a training run comes in as a bundle exported
from that run (``export.mb_bundle``).
"""
