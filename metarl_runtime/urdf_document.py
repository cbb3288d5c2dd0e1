"""A URDF string read as hostile input, for every robot-side reader of one.

The node reads ``robot_description`` for joint limits (``metarl_ros.robot_limits``) and a residual
bundle carries its nominal model's URDF (``rigid_body``): both come from outside the process, so
both refuse the same things before any element is looked at: a document too large to be a robot
description, a DOCTYPE or entity declaration (the expansion attacks an XML parser is open to; a
URDF needs neither), XML that is not well-formed and a root that is not ``<robot>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

MAX_URDF_BYTES = 8 * 1024 * 1024
"""Largest URDF accepted: a Panda URDF is about 20 kB; anything near this cap is not a robot description."""


def parse_urdf_root(urdf: str, error: type[Exception], what: str) -> ElementTree.Element:
    """The ``<robot>`` element of ``urdf``, or ``error`` saying what is wrong with it; ``what``
    names the document in the message (e.g. ``robot_description``)."""
    size = len(urdf.encode("utf-8", errors="replace"))
    if size > MAX_URDF_BYTES:
        raise error(f"{what} is {size} bytes; at most {MAX_URDF_BYTES} are accepted")
    if "<!DOCTYPE" in urdf.upper() or "<!ENTITY" in urdf.upper():
        raise error(f"{what} declares a DOCTYPE or entities; a robot description needs neither")
    try:
        root = ElementTree.fromstring(urdf)
    except ElementTree.ParseError as parse_error:
        raise error(f"{what} is not well-formed XML: {parse_error}") from None
    if root.tag != "robot":
        raise error(f"{what}: root element is <{root.tag}>, expected <robot>")
    return root
