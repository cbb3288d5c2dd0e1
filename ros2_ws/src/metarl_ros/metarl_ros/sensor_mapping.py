"""The node's sensor mapping, which lives on the runtime side (``export.runtime_sensor_mapping``).

It moved there so that the offline log scorer (``metarl eval --bag``, no ROS) maps a recorded
``JointState``/IMU/odometry by field name with the very code the node runs; this module keeps the
node's and the bridge's imports as they were.
"""

from export.runtime_sensor_mapping import (
    FieldVector,
    SensorAssembler,
    SensorRejected,
    roll_pitch_from_quaternion,
    twist_to_wheel_speeds,
    wheel_speeds_to_twist,
)

__all__ = [
    "FieldVector",
    "SensorAssembler",
    "SensorRejected",
    "roll_pitch_from_quaternion",
    "twist_to_wheel_speeds",
    "wheel_speeds_to_twist",
]
