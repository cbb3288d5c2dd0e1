"""Signed bundles: a robot holding a trusted public key runs bundles signed by its private key
and refuses unsigned ones, ones signed by another key, and ones changed after signing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from export.onnx_export import export_trained_dynamics
from export.recurrent_export import export_trained_policy
from metarl.cli import main
from metarl_runtime.bundle_manifest import BundleSignatureError
from metarl_runtime.bundle_signature import generate_key_pair
from metarl_runtime.controllers import OnlineAdaptiveController, RecurrentPolicyController, load_controller
from tests.conftest import read_manifest_data, tiny_model, tiny_policy, write_manifest_data


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two key pairs: the robot trusts ``public`` (made by ``private``); ``other_*`` is a stranger's."""
    root = tmp_path_factory.mktemp("keys")
    main(["keygen", "--out", str(root / "signing.pem")])
    generate_key_pair(root / "other.pem", root / "other.pem.pub")
    return {
        "private": root / "signing.pem",
        "public": root / "signing.pem.pub",
        "other_private": root / "other.pem",
        "other_public": root / "other.pem.pub",
    }


@pytest.fixture(scope="module")
def signed_bundle(keys: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_trained_dynamics(
        tiny_model(1), tmp_path_factory.mktemp("signed") / "bundle", sign_key=keys["private"]
    )


def test_keygen_writes_a_private_key_only_its_owner_reads(keys: dict[str, Path]) -> None:
    assert keys["private"].stat().st_mode & 0o777 == 0o600
    assert keys["public"].read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_keygen_never_overwrites_a_key(keys: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    before = keys["private"].read_bytes()
    with pytest.raises(SystemExit):
        main(["keygen", "--out", str(keys["private"])])
    assert "already exists; a key is never overwritten" in capsys.readouterr().err
    assert keys["private"].read_bytes() == before


def test_a_signed_bundle_loads_under_its_public_key(signed_bundle: Path, keys: dict[str, Path]) -> None:
    assert (signed_bundle / "bundle.json.sig").stat().st_size == 64
    controller = load_controller(signed_bundle, trusted_public_key=keys["public"])
    assert isinstance(controller, OnlineAdaptiveController)


def test_a_signed_recurrent_bundle_loads_under_its_public_key(keys: dict[str, Path], tmp_path: Path) -> None:
    bundle = export_trained_policy(tiny_policy(), tmp_path / "recurrent", sign_key=keys["private"])
    assert isinstance(load_controller(bundle, trusted_public_key=keys["public"]), RecurrentPolicyController)
    (bundle / "bundle.json.sig").unlink()
    with pytest.raises(BundleSignatureError, match=r"bundle\.json\.sig: missing"):
        load_controller(bundle, trusted_public_key=keys["public"])


def test_an_unsigned_bundle_is_refused_where_a_key_is_trusted(bundle_copy: Path, keys: dict[str, Path]) -> None:
    with pytest.raises(
        BundleSignatureError, match=r"bundle\.json\.sig: missing; this robot trusts .* signed bundles only"
    ):
        load_controller(bundle_copy, trusted_public_key=keys["public"])
    assert isinstance(load_controller(bundle_copy), OnlineAdaptiveController), "no key: unsigned bundles run"


def test_a_bundle_signed_by_another_key_is_refused(signed_bundle: Path, keys: dict[str, Path]) -> None:
    with pytest.raises(BundleSignatureError, match=r"bundle\.json\.sig: does not verify under .*other\.pem\.pub"):
        load_controller(signed_bundle, trusted_public_key=keys["other_public"])


def test_a_bundle_changed_after_signing_is_refused(signed_bundle: Path, keys: dict[str, Path], tmp_path: Path) -> None:
    """The adversary rewrites bundle.json (wider limits) and its digest, but cannot re-sign."""
    bundle = Path(shutil.copytree(signed_bundle, tmp_path / "bundle"))
    data = read_manifest_data(bundle)
    data["action_high"] = [1000.0] * 7
    write_manifest_data(bundle, data)
    with pytest.raises(BundleSignatureError, match="does not verify"):
        load_controller(bundle, trusted_public_key=keys["public"])


@pytest.mark.parametrize("signature", [b"", b"\0" * 64, b"x" * 63, b"y" * 4096])
def test_a_garbage_signature_is_refused(
    signed_bundle: Path, keys: dict[str, Path], tmp_path: Path, signature: bytes
) -> None:
    bundle = Path(shutil.copytree(signed_bundle, tmp_path / "bundle"))
    (bundle / "bundle.json.sig").write_bytes(signature)
    with pytest.raises(BundleSignatureError, match="does not verify"):
        load_controller(bundle, trusted_public_key=keys["public"])


@pytest.mark.parametrize("which", ["missing", "garbage", "private key"])
def test_a_trusted_key_that_is_not_an_ed25519_public_key_is_named(
    signed_bundle: Path, keys: dict[str, Path], tmp_path: Path, which: str
) -> None:
    key = {"missing": tmp_path / "none.pub", "garbage": tmp_path / "garbage.pub", "private key": keys["private"]}[which]
    if which == "garbage":
        key.write_text("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(BundleSignatureError, match=f"{key.name}: not a readable PEM public key"):
        load_controller(signed_bundle, trusted_public_key=key)


def test_an_openssl_made_key_pair_signs_and_verifies(tmp_path: Path) -> None:
    """The documented alternative to ``metarl keygen``."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    private, public = tmp_path / "robot.pem", tmp_path / "robot.pub"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(private)], check=True)
    subprocess.run(["openssl", "pkey", "-in", str(private), "-pubout", "-out", str(public)], check=True)
    bundle = export_trained_dynamics(tiny_model(1), tmp_path / "bundle", sign_key=private)
    assert isinstance(load_controller(bundle, trusted_public_key=public), OnlineAdaptiveController)
