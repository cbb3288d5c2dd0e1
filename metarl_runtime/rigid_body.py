"""The robot's nominal rigid-body model from its URDF, and its inverse dynamics, numpy only.

Why on the robot: a real arm ships its rigid-body model (the Panda's through libfranka), and a
computed-torque controller built on it is exact but for what the model does not know (a payload,
friction that drifts). The learned part of a residual controller only has to model that
difference, which is small and low-dimensional, instead of the whole arm.

The URDF is parsed with ``xml.etree`` into a kinematic tree of rigid bodies, one per actuated
joint: links joined by fixed joints are merged into one body (masses, centres of mass and
inertias combined), and named prismatic or revolute joints held at given positions (the Panda's
fingers closed on a payload) are treated as fixed at those positions. Inverse dynamics is the
recursive Newton–Euler algorithm (Featherstone, *Rigid Body Dynamics Algorithms*, ch. 5) in body
coordinates, vectorised over a batch of states.

The URDF is hostile input (it travels in a bundle): it is size-capped, a DOCTYPE (the only way
to declare entities) is refused, every number must be finite and in range, and every error is a
:class:`RigidBodyModelError` naming the link, joint and field.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from metarl_runtime.urdf_document import parse_urdf_root

MAX_LINKS = 1000
MAX_LENGTH_M = 1e3
"""Bound on any origin offset (m): a bigger robot is not one this runtime controls."""
MAX_MASS_KG = 1e6
MAX_INERTIA_KG_M2 = 1e6
GRAVITY_M_S2 = (0.0, 0.0, -9.81)
"""Gravity in the base frame (a base mounted upright, as in the simulator)."""
MOVABLE_TYPES = ("revolute", "continuous", "prismatic")


class RigidBodyModelError(ValueError):
    """A URDF that cannot be turned into a rigid-body model; the message names where and why."""


@dataclass(frozen=True)
class _Inertial:
    """A rigid body's mass, first moment ``m c`` and rotational inertia about its frame's origin."""

    mass_kg: float
    first_moment: np.ndarray  # (3,) kg·m
    inertia_origin: np.ndarray  # (3, 3) kg·m², about the frame origin

    @staticmethod
    def zero() -> _Inertial:
        return _Inertial(0.0, np.zeros(3), np.zeros((3, 3)))

    def moved(self, rotation: np.ndarray, translation: np.ndarray) -> _Inertial:
        """The same body expressed in a frame where its own frame sits at ``(rotation, translation)``."""
        mass, h, inertia = self.mass_kg, self.first_moment, self.inertia_origin
        # Through the centre of mass: rotate the inertia about it, then the parallel-axis theorem.
        # A massless link may still carry rotational inertia (the Panda's link8 does), kept as given.
        com = h / mass if mass > 0.0 else np.zeros(3)
        inertia_com = inertia - mass * (np.dot(com, com) * np.eye(3) - np.outer(com, com))
        new_com = rotation @ com + translation
        new_inertia = rotation @ inertia_com @ rotation.T + mass * (
            np.dot(new_com, new_com) * np.eye(3) - np.outer(new_com, new_com)
        )
        return _Inertial(mass, mass * new_com, new_inertia)

    def __add__(self, other: _Inertial) -> _Inertial:
        return _Inertial(
            self.mass_kg + other.mass_kg,
            self.first_moment + other.first_moment,
            self.inertia_origin + other.inertia_origin,
        )


def rpy_matrix(rpy: Sequence[float]) -> np.ndarray:
    """Rotation matrix of URDF roll-pitch-yaw (fixed axes x, y, z: ``Rz(y) Ry(p) Rx(r)``)."""
    r, p, y = rpy
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross`` of broadcast ``(..., 3)`` vectors by its components, the same products and
    differences in the same order (bit for bit its result): ``np.cross``'s axis handling costs
    more than the arithmetic on the robot's batches of a few states, and inverse dynamics calls it
    11 times a body."""
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    return np.stack((a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0), axis=-1)


def axis_rotation(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues' rotation about a unit ``axis`` (3,) by ``angle`` (B,), shape ``(B, 3, 3)``."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)


def _numbers(where: str, text: str | None, count: int, default: Sequence[float], bound: float) -> np.ndarray:
    """``count`` finite floats of a space-separated attribute, each within ``±bound``."""
    if text is None:
        return np.asarray(default, dtype=np.float64)
    parts = text.split()
    try:
        values = np.array([float(x) for x in parts], dtype=np.float64)
    except ValueError:
        raise RigidBodyModelError(f"{where}={text!r}: expected {count} numbers") from None
    if len(values) != count:
        raise RigidBodyModelError(f"{where}={text!r}: expected {count} numbers, got {len(values)}")
    if not np.all(np.isfinite(values)) or np.any(np.abs(values) > bound):
        raise RigidBodyModelError(f"{where}={text!r}: every value must be finite and within ±{bound:g}")
    return values


def _origin(where: str, element: ElementTree.Element) -> tuple[np.ndarray, np.ndarray]:
    """(rotation, translation) of an ``<origin>`` child (identity when absent)."""
    origin = element.find("origin")
    if origin is None:
        return np.eye(3), np.zeros(3)
    xyz = _numbers(f"{where} <origin xyz>", origin.get("xyz"), 3, (0.0, 0.0, 0.0), MAX_LENGTH_M)
    rpy = _numbers(f"{where} <origin rpy>", origin.get("rpy"), 3, (0.0, 0.0, 0.0), 2.0 * math.pi + 1e-6)
    return rpy_matrix(rpy), xyz


def _link_inertial(name: str, link: ElementTree.Element) -> _Inertial:
    """A link's ``<inertial>`` in the link frame (a link without one is massless)."""
    inertial = link.find("inertial")
    if inertial is None:
        return _Inertial.zero()
    where = f"link {name!r} <inertial>"
    mass_element = inertial.find("mass")
    mass = float(
        _numbers(
            f"{where} <mass value>", None if mass_element is None else mass_element.get("value"), 1, (0.0,), MAX_MASS_KG
        )[0]
    )
    if mass < 0.0:
        raise RigidBodyModelError(f"{where} <mass value={mass}>: must be >= 0")
    inertia_element = inertial.find("inertia")
    entries = {}
    for key in ("ixx", "ixy", "ixz", "iyy", "iyz", "izz"):
        text = None if inertia_element is None else inertia_element.get(key)
        entries[key] = float(_numbers(f"{where} <inertia {key}>", text, 1, (0.0,), MAX_INERTIA_KG_M2)[0])
    inertia = np.array(
        [
            [entries["ixx"], entries["ixy"], entries["ixz"]],
            [entries["ixy"], entries["iyy"], entries["iyz"]],
            [entries["ixz"], entries["iyz"], entries["izz"]],
        ]
    )
    rotation, com = _origin(where, inertial)
    inertia_com = rotation @ inertia @ rotation.T
    return _Inertial(mass, mass * com, inertia_com + mass * (np.dot(com, com) * np.eye(3) - np.outer(com, com)))


@dataclass(frozen=True)
class _Joint:
    name: str
    kind: str
    parent: str
    child: str
    rotation: np.ndarray
    translation: np.ndarray
    axis: np.ndarray


def _parse_joint(joint: ElementTree.Element, links: Mapping[str, ElementTree.Element]) -> _Joint:
    name = joint.get("name")
    if not name:
        raise RigidBodyModelError("URDF: a <joint> has no name")
    where = f"joint {name!r}"
    kind = joint.get("type", "")
    if kind not in (*MOVABLE_TYPES, "fixed"):
        raise RigidBodyModelError(f"{where} type={kind!r}: expected one of {[*MOVABLE_TYPES, 'fixed']}")
    ends = []
    for tag in ("parent", "child"):
        element = joint.find(tag)
        link = None if element is None else element.get("link")
        if link not in links:
            raise RigidBodyModelError(f"{where} <{tag} link={link!r}>: no such link")
        ends.append(link)
    rotation, translation = _origin(where, joint)
    axis = np.zeros(3)
    if kind != "fixed":
        axis_element = joint.find("axis")
        axis = _numbers(
            f"{where} <axis xyz>", None if axis_element is None else axis_element.get("xyz"), 3, (1.0, 0.0, 0.0), 1e3
        )
        norm = float(np.linalg.norm(axis))
        if norm < 1e-9:
            raise RigidBodyModelError(f"{where} <axis xyz>: a movable joint needs a non-zero axis")
        axis = axis / norm
    return _Joint(name, kind, ends[0], ends[1], rotation, translation, axis)


@dataclass(frozen=True)
class RigidBodyModel:
    """A fixed-base kinematic tree of rigid bodies, one per actuated joint, and its inverse dynamics.

    Arrays are in ``joint_names`` order; ``parent[i]`` is the index of body ``i``'s parent body
    (-1: the base), and every parent comes before its children (``from_urdf`` orders them so).
    Body ``i``'s frame is its joint's child frame; ``rotation[i]``, ``translation[i]`` place the
    joint frame (at zero joint position) in the parent body's frame.
    """

    joint_names: tuple[str, ...]
    parent: tuple[int, ...]
    rotation: np.ndarray  # (N, 3, 3)
    translation: np.ndarray  # (N, 3) m
    axis: np.ndarray  # (N, 3) unit, in the body frame
    prismatic: np.ndarray  # (N,) bool
    mass_kg: np.ndarray  # (N,)
    com_m: np.ndarray  # (N, 3), in the body frame
    inertia_com: np.ndarray  # (N, 3, 3) kg·m², about the centre of mass, body-frame axes

    @classmethod
    def from_urdf(
        cls, urdf: str, joint_names: Sequence[str], held_positions: Mapping[str, float] | None = None
    ) -> RigidBodyModel:
        """The model of ``urdf`` actuated at ``joint_names`` (in that order), with every other
        movable joint named in ``held_positions`` (rad or m) held there as if fixed.

        A movable joint neither actuated nor held is refused: its motion would change the
        dynamics of the joints above it, which this model would get silently wrong.
        """
        held = dict(held_positions or {})
        root = parse_urdf_root(urdf, RigidBodyModelError, "URDF")
        links: dict[str, ElementTree.Element] = {}
        for link in root.iter("link"):
            name = link.get("name")
            if not name:
                raise RigidBodyModelError("URDF: a <link> has no name")
            if name in links:
                raise RigidBodyModelError(f"URDF: link {name!r} is defined twice")
            links[name] = link
            if len(links) > MAX_LINKS:
                raise RigidBodyModelError(f"URDF has more than {MAX_LINKS} links")
        joints: dict[str, _Joint] = {}
        child_of: dict[str, _Joint] = {}
        for element in root.iter("joint"):
            joint = _parse_joint(element, links)
            if joint.name in joints:
                raise RigidBodyModelError(f"URDF: joint {joint.name!r} is defined twice")
            if joint.child in child_of:
                raise RigidBodyModelError(f"joint {joint.name!r}: link {joint.child!r} already has a parent joint")
            joints[joint.name] = joint
            child_of[joint.child] = joint
        roots = [name for name in links if name not in child_of]
        if len(roots) != 1:
            raise RigidBodyModelError(f"URDF must have exactly one root link (a tree), found {roots}")
        actuated = list(joint_names)
        if len(set(actuated)) != len(actuated):
            raise RigidBodyModelError(f"joint_names {actuated} name a joint twice")
        for name in actuated:
            if name not in joints or joints[name].kind == "fixed":
                raise RigidBodyModelError(f"actuated joint {name!r} is not a movable joint of the URDF")
        for name, position in held.items():
            if name not in joints or joints[name].kind == "fixed" or name in actuated:
                raise RigidBodyModelError(f"held joint {name!r} is not a movable, non-actuated joint of the URDF")
            if not (math.isfinite(position) and abs(position) <= MAX_LENGTH_M):
                raise RigidBodyModelError(f"held joint {name!r} position={position}: must be finite")
        for joint in joints.values():
            if joint.kind != "fixed" and joint.name not in actuated and joint.name not in held:
                raise RigidBodyModelError(
                    f"joint {joint.name!r} ({joint.kind}) is neither actuated nor held at a position"
                )

        children: dict[str, list[_Joint]] = {}
        for joint in joints.values():
            children.setdefault(joint.parent, []).append(joint)

        # Walk the tree from the root: every link belongs to the body of its nearest actuated
        # joint above it (-1: the base), placed in that body's frame by the product of transforms.
        body_of_joint: dict[str, int] = {}
        bodies: list[dict] = []
        inertials: list[_Inertial] = []
        stack: list[tuple[str, int, np.ndarray, np.ndarray]] = [(roots[0], -1, np.eye(3), np.zeros(3))]
        visited = 0
        while stack:
            link, body, rotation, translation = stack.pop()
            visited += 1
            if body >= 0:
                inertials[body] = inertials[body] + _link_inertial(link, links[link]).moved(rotation, translation)
            for joint in children.get(link, []):
                joint_rotation = rotation @ joint.rotation
                joint_translation = rotation @ joint.translation + translation
                if joint.name in actuated:
                    body_of_joint[joint.name] = len(bodies)
                    bodies.append(
                        {"joint": joint, "parent": body, "rotation": joint_rotation, "translation": joint_translation}
                    )
                    inertials.append(_Inertial.zero())
                    stack.append((joint.child, len(bodies) - 1, np.eye(3), np.zeros(3)))
                    continue
                if joint.kind == "fixed":
                    stack.append((joint.child, body, joint_rotation, joint_translation))
                    continue
                position = held[joint.name]
                if joint.kind == "prismatic":
                    stack.append(
                        (joint.child, body, joint_rotation, joint_translation + joint_rotation @ joint.axis * position)
                    )
                else:
                    turn = axis_rotation(joint.axis, np.array([position]))[0]
                    stack.append((joint.child, body, joint_rotation @ turn, joint_translation))
        if visited != len(links):
            raise RigidBodyModelError(
                f"URDF: {len(links) - visited} links are not reachable from the root {roots[0]!r}"
            )

        # Bodies were numbered in tree order (parents first); reorder to joint_names, keeping the
        # parent-first property by sorting the computation order, not the storage order.
        order = [body_of_joint[name] for name in actuated]
        new_index = {old: new for new, old in enumerate(order)}
        ordered = [bodies[old] for old in order]
        masses, coms, inertias = [], [], []
        for old in order:
            inertial = inertials[old]
            mass = inertial.mass_kg
            com = inertial.first_moment / mass if mass > 0.0 else np.zeros(3)
            inertia = inertial.inertia_origin - mass * (np.dot(com, com) * np.eye(3) - np.outer(com, com))
            masses.append(mass)
            coms.append(com)
            inertias.append(inertia)
        return cls(
            joint_names=tuple(actuated),
            parent=tuple(-1 if b["parent"] < 0 else new_index[b["parent"]] for b in ordered),
            rotation=np.array([b["rotation"] for b in ordered]),
            translation=np.array([b["translation"] for b in ordered]),
            axis=np.array([b["joint"].axis for b in ordered]),
            prismatic=np.array([b["joint"].kind == "prismatic" for b in ordered]),
            mass_kg=np.array(masses),
            com_m=np.array(coms),
            inertia_com=np.array(inertias),
        )

    @property
    def dof(self) -> int:
        return len(self.joint_names)

    def _computation_order(self) -> list[int]:
        """Body indices with every parent before its children (the forward pass's order)."""
        order: list[int] = []
        placed: set[int] = set()
        while len(order) < self.dof:
            for i, parent in enumerate(self.parent):
                if i not in placed and (parent < 0 or parent in placed):
                    order.append(i)
                    placed.add(i)
        return order

    def inverse_dynamics(
        self,
        position: np.ndarray,
        velocity: np.ndarray,
        acceleration: np.ndarray,
        gravity_m_s2: Sequence[float] = GRAVITY_M_S2,
    ) -> np.ndarray:
        """Joint torques (N·m; N for prismatic joints) that produce ``acceleration`` at
        ``(position, velocity)``, gravity included, by recursive Newton–Euler.

        Inputs are ``(N,)`` or ``(B, N)`` in ``joint_names`` order; the output has their shape.
        No joint damping or friction: those are the controller's to add.
        """
        q, qd, qdd = (np.asarray(x, dtype=np.float64) for x in (position, velocity, acceleration))
        single = q.ndim == 1
        q, qd, qdd = (np.atleast_2d(x) for x in (q, qd, qdd))
        if not (q.shape == qd.shape == qdd.shape and q.shape[1] == self.dof):
            raise ValueError(
                f"inverse_dynamics: position, velocity, acceleration must each be (B, {self.dof}); "
                f"got {q.shape}, {qd.shape}, {qdd.shape}"
            )
        batch = q.shape[0]
        order = self._computation_order()
        # Body-frame quantities per body: rotation to parent, offset in parent, ω, ω̇, a (origin).
        rot = [np.empty(0)] * self.dof
        offset = [np.empty(0)] * self.dof
        omega = [np.empty(0)] * self.dof
        omega_dot = [np.empty(0)] * self.dof
        accel = [np.empty(0)] * self.dof
        base_accel = np.broadcast_to(-np.asarray(gravity_m_s2, dtype=np.float64), (batch, 3))
        zero = np.zeros((batch, 3))
        for i in order:
            axis = self.axis[i]
            if self.prismatic[i]:
                r = np.broadcast_to(self.rotation[i], (batch, 3, 3))
                p = self.translation[i] + q[:, i : i + 1] * (self.rotation[i] @ axis)
            else:
                r = self.rotation[i] @ axis_rotation(axis, q[:, i])
                p = np.broadcast_to(self.translation[i], (batch, 3))
            parent = self.parent[i]
            w_p, wd_p, a_p = (
                (zero, zero, base_accel) if parent < 0 else (omega[parent], omega_dot[parent], accel[parent])
            )
            # Parent's motion at this body's origin, then rotated into this body's frame (rᵀ).
            a_origin = a_p + cross(wd_p, p) + cross(w_p, cross(w_p, p))
            w_in = np.einsum("bji,bj->bi", r, w_p)
            wd_in = np.einsum("bji,bj->bi", r, wd_p)
            a_in = np.einsum("bji,bj->bi", r, a_origin)
            s_qd, s_qdd = axis * qd[:, i : i + 1], axis * qdd[:, i : i + 1]
            if self.prismatic[i]:
                omega[i], omega_dot[i] = w_in, wd_in
                accel[i] = a_in + s_qdd + 2.0 * cross(w_in, s_qd)
            else:
                omega[i] = w_in + s_qd
                omega_dot[i] = wd_in + s_qdd + cross(w_in, s_qd)
                accel[i] = a_in
            rot[i], offset[i] = r, p
        force = [np.zeros((batch, 3)) for _ in range(self.dof)]
        moment = [np.zeros((batch, 3)) for _ in range(self.dof)]
        torque = np.empty((batch, self.dof))
        for i in reversed(order):
            c, inertia, w, wd = self.com_m[i], self.inertia_com[i], omega[i], omega_dot[i]
            a_com = accel[i] + cross(wd, c) + cross(w, cross(w, c))
            f = force[i] + self.mass_kg[i] * a_com
            # einsum, not `@`: a matmul's result for a row depends on the batch (BLAS for some
            # shapes), and the robot's controller batches a window's pair with its command.
            n = (
                moment[i]
                + np.einsum("bj,ij->bi", wd, inertia)
                + cross(w, np.einsum("bj,ij->bi", w, inertia))
                + cross(c, self.mass_kg[i] * a_com)
            )
            torque[:, i] = np.einsum("bj,j->b", f if self.prismatic[i] else n, self.axis[i])
            parent = self.parent[i]
            if parent >= 0:
                f_parent = np.einsum("bij,bj->bi", rot[i], f)
                force[parent] += f_parent
                moment[parent] += np.einsum("bij,bj->bi", rot[i], n) + cross(offset[i], f_parent)
        return torque[0] if single else torque
