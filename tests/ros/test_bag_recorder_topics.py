"""The recorder's ``topics`` parameter: ``/topic:pkg/msg/Type`` entries, a bad one refused by name."""

from __future__ import annotations

import pytest

from metarl_ros.bag_recorder import DEFAULT_TOPICS, message_class, parse_topic


def test_every_default_topic_parses_to_an_installed_message_type() -> None:
    for entry in DEFAULT_TOPICS:
        topic, msgtype = parse_topic(entry)
        assert topic.startswith("/")
        assert message_class(msgtype).__name__ == msgtype.rsplit("/", 1)[1]


@pytest.mark.parametrize("entry", ["joint_states:sensor_msgs/msg/JointState", "/joint_states", "/odom:Odometry"])
def test_a_malformed_topics_entry_is_refused_naming_it(entry: str) -> None:
    with pytest.raises(ValueError, match="topics entry"):
        parse_topic(entry)
