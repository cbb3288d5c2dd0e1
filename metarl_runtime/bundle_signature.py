"""Signed bundles: a detached Ed25519 signature over ``bundle.json``, verified on the robot.

``bundle.json`` lists the sha256 of every file the runtime loads, so one signature over its
bytes covers the whole bundle. The exporter signs with a private key (``metarl export
--sign-key KEY.pem``); a robot given a trusted public key refuses an unsigned bundle, or one
signed by any other key, with :class:`BundleSignatureError`. Keys are PEM files (PKCS#8 private,
SubjectPublicKeyInfo public), as ``metarl keygen`` writes them and as
``openssl genpkey -algorithm ed25519`` makes them. The library is ``cryptography`` (pyca),
numpy- and torch-free like the rest of the robot side.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from metarl_runtime.bundle_errors import MANIFEST_NAME, SIGNATURE_NAME, BundleSignatureError

SIGNATURE_BYTES = 64
"""An Ed25519 signature's length."""


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in PEM file ``path``; ``BundleSignatureError`` naming the file if it
    is missing or not an Ed25519 public key."""
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as error:
        raise BundleSignatureError(f"{path}: not a readable PEM public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise BundleSignatureError(f"{path}: is a {type(key).__name__}, expected an Ed25519 public key")
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM file ``path`` (unencrypted PKCS#8); ``ValueError`` naming
    the file otherwise."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"{path}: not a readable, unencrypted PEM private key ({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: is a {type(key).__name__}, expected an Ed25519 private key")
    return key


def sign_manifest(bundle_dir: Path, private_key_path: Path) -> Path:
    """Write ``bundle_dir/bundle.json.sig``: the Ed25519 signature of ``bundle.json``'s bytes."""
    key = load_private_key(private_key_path)
    signature_path = Path(bundle_dir) / SIGNATURE_NAME
    signature_path.write_bytes(key.sign((Path(bundle_dir) / MANIFEST_NAME).read_bytes()))
    return signature_path


def verify_manifest_signature(bundle_dir: Path, manifest_bytes: bytes, public_key_path: Path) -> None:
    """Refuse, with :class:`BundleSignatureError`, a bundle whose ``bundle.json`` (as read,
    ``manifest_bytes``) carries no signature, or one that ``public_key_path``'s key did not make."""
    key = load_public_key(public_key_path)
    signature_path = Path(bundle_dir) / SIGNATURE_NAME
    if not signature_path.is_file():
        raise BundleSignatureError(
            f"{signature_path}: missing; this robot trusts {public_key_path} and runs signed bundles only "
            "(metarl export --sign-key)"
        )
    signature = signature_path.read_bytes()
    try:
        if len(signature) != SIGNATURE_BYTES:
            raise InvalidSignature
        key.verify(signature, manifest_bytes)
    except InvalidSignature:
        raise BundleSignatureError(
            f"{signature_path}: does not verify under {public_key_path}: bundle.json was changed after "
            "signing, or another key signed it"
        ) from None


def generate_key_pair(private_key_path: Path, public_key_path: Path) -> None:
    """Write a new Ed25519 key pair as PEM files; the private one readable by its owner only.
    Neither file may exist already (a key is never overwritten)."""
    private_key_path, public_key_path = Path(private_key_path), Path(public_key_path)
    for path in (private_key_path, public_key_path):
        if path.exists():
            raise FileExistsError(f"{path}: already exists; a key is never overwritten")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    descriptor = os.open(private_key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(private_pem)
    public_key_path.write_bytes(public_pem)
