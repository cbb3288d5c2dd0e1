"""The names of a bundle's own files and the errors a bundle can raise.

Kept apart from the manifest reader so that the signature check (which the reader calls) and the
reader share them without importing each other.
"""

MANIFEST_NAME = "bundle.json"
DIGEST_NAME = "bundle.json.sha256"
"""The sha256 of ``bundle.json``'s bytes (hex), checked before the manifest is parsed."""
SIGNATURE_NAME = "bundle.json.sig"
"""Optional detached Ed25519 signature over ``bundle.json``'s bytes (which hold every file's sha256)."""


class BundleError(ValueError):
    """A bundle that cannot be used; the message names the file and field."""


class BundleSchemaError(BundleError):
    """``bundle.json`` is malformed, misses a field, or comes from a newer schema."""


class BundleIntegrityError(BundleError):
    """A file's sha256 differs from the one recorded at export."""


class BundleCorruptError(BundleError):
    """A model file is truncated, not a valid ONNX graph for this bundle, or a graph whose
    inputs or outputs differ from what ``bundle.json`` says."""


class BundleSignatureError(BundleError):
    """The robot trusts a public key and the bundle is unsigned, or signed by another key."""


class RobotMismatchError(BundleError):
    """The bundle was made for another robot, or for joints this robot lacks."""
