"""Unit tests for backendai_rpc_keypair: Z85, X25519, the certificate format and the module."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / ".collections"))

from ansible.module_utils.testing import patch_module_args  # noqa: E402
from ansible_collections.backendai.cluster.plugins.modules import (  # noqa: E402
    backendai_rpc_keypair as mod,
)

# ---------------------------------------------------------------------------------------------
# Z85 (ZeroMQ RFC 32)
# ---------------------------------------------------------------------------------------------


def test_z85_rfc32_vector():
    data = bytes([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])
    assert mod.z85_encode(data) == "HelloWorld"
    assert mod.z85_decode("HelloWorld") == data


@pytest.mark.parametrize("size", [0, 4, 32, 64])
def test_z85_roundtrip(size):
    data = os.urandom(size)
    text = mod.z85_encode(data)
    assert len(text) == size * 5 // 4
    assert mod.z85_decode(text) == data


def test_z85_extremes():
    assert mod.z85_encode(b"\x00\x00\x00\x00") == "00000"
    assert mod.z85_encode(b"\xff\xff\xff\xff") == "%nSc0"
    assert mod.z85_decode("%nSc0") == b"\xff\xff\xff\xff"


@pytest.mark.parametrize(
    ("call", "arg"),
    [
        (mod.z85_encode, b"abc"),  # not a multiple of 4 bytes
        (mod.z85_decode, "abcd"),  # not a multiple of 5 characters
        (mod.z85_decode, "abc\"d"),  # character outside the alphabet
        (mod.z85_decode, "#####"),  # value above 2**32 - 1
    ],
)
def test_z85_rejects_bad_input(call, arg):
    with pytest.raises(ValueError):
        call(arg)


# ---------------------------------------------------------------------------------------------
# X25519 (RFC 7748)
# ---------------------------------------------------------------------------------------------

RFC7748_SCALARMULT = [
    (  # section 5.2, first vector
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
    ),
    (  # section 5.2, second vector (the top bit of u must be masked)
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
    ),
]


@pytest.mark.parametrize(("scalar", "u", "expected"), RFC7748_SCALARMULT)
def test_x25519_rfc7748_vectors(scalar, u, expected):
    assert mod.x25519(bytes.fromhex(scalar), bytes.fromhex(u)).hex() == expected


def test_x25519_rfc7748_diffie_hellman():
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    alice_pub = mod.curve_public(alice)
    bob_pub = mod.curve_public(bob)
    assert alice_pub.hex() == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    assert bob_pub.hex() == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    assert mod.x25519(alice, bob_pub).hex() == shared
    assert mod.x25519(bob, alice_pub).hex() == shared


# The example key pairs of the zmq_curve(7) manual, in Z85.
ZMQ_EXAMPLE_PAIRS = [
    ("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6", "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"),
    ("D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs", "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"),
]


@pytest.mark.parametrize(("secret", "public"), ZMQ_EXAMPLE_PAIRS)
def test_zmq_example_keys(secret, public):
    assert mod.z85_encode(mod.curve_public(mod.z85_decode(secret))) == public


def test_curve_keypair_shape():
    public, secret = mod.curve_keypair()
    assert len(public) == 40 and len(secret) == 40
    assert mod.z85_encode(mod.curve_public(mod.z85_decode(secret))) == public
    assert mod.curve_keypair()[1] != secret


# ---------------------------------------------------------------------------------------------
# Certificate files
# ---------------------------------------------------------------------------------------------

SECRET, PUBLIC = ZMQ_EXAMPLE_PAIRS[0]


def test_render_public_certificate():
    text = mod.render_certificate(PUBLIC, now="2026-11-23 07:00:00.000000")
    lines = text.splitlines()
    assert lines[0].startswith("#   ****  Generated on 2026-11-23 07:00:00.000000")
    assert lines[1] == "#   ZeroMQ CURVE Public Certificate"
    body = [line for line in lines if line and not line.startswith("#")]
    assert body == ["metadata", "curve", f'    public-key = "{PUBLIC}"']
    assert "secret-key" not in text
    assert text.endswith("\n")


def test_render_secret_certificate():
    text = mod.render_certificate(PUBLIC, SECRET, metadata={"role": "manager"})
    lines = text.splitlines()
    assert lines[1] == "#   ZeroMQ CURVE **Secret** Certificate"
    body = [line for line in lines if line and not line.startswith("#")]
    assert body == [
        "metadata",
        "    role = manager",
        "curve",
        f'    public-key = "{PUBLIC}"',
        f'    secret-key = "{SECRET}"',
    ]
    # Comments, then one empty line, then the sections (as pyzmq writes them).
    first_body = lines.index("metadata")
    assert lines[first_body - 1] == ""
    assert all(line.startswith("#") for line in lines[: first_body - 1])


def test_parse_certificate_like_pyzmq():
    secret_text = mod.render_certificate(PUBLIC, SECRET)
    assert mod.parse_certificate(secret_text) == (PUBLIC, SECRET)
    assert mod.parse_certificate(mod.render_certificate(PUBLIC)) == (PUBLIC, None)
    # pyzmq strips blanks and both kinds of quotes around the value.
    assert mod.parse_certificate(f"curve\n  public-key = '{PUBLIC}'\n") == (PUBLIC, None)


def test_check_pair():
    pub_text = mod.render_certificate(PUBLIC)
    sec_text = mod.render_certificate(PUBLIC, SECRET)
    assert mod.check_pair(pub_text, sec_text) == (PUBLIC, None)
    _other_secret, other_public = ZMQ_EXAMPLE_PAIRS[1]
    key, reason = mod.check_pair(mod.render_certificate(other_public), sec_text)
    assert key is None and "does not belong" in reason
    key, reason = mod.check_pair(pub_text, mod.render_certificate(other_public, SECRET))
    assert key is None and "secret file" in reason
    key, reason = mod.check_pair(pub_text, "curve\n")
    assert key is None and "no secret-key" in reason
    key, reason = mod.check_pair(sec_text, sec_text)
    assert key is None and "public file contains a secret-key" in reason
    key, reason = mod.check_pair(pub_text, 'curve\n secret-key = "tooshort"\n')
    assert key is None


# ---------------------------------------------------------------------------------------------
# The module itself, run in-process
# ---------------------------------------------------------------------------------------------


def run_module(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit):
        mod.main()
    return json.loads(capsys.readouterr().out)


def test_module_create_idempotent_and_modes(tmp_path, capsys):
    args = {"path": str(tmp_path), "name": "manager"}
    check = run_module(capsys, _ansible_check_mode=True, **args)
    assert check["changed"] is True and check["generated"] is True
    assert not list(tmp_path.iterdir())

    first = run_module(capsys, **args)
    assert first["changed"] is True and first["generated"] is True
    public_file = tmp_path / "manager.key"
    secret_file = tmp_path / "manager.key_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(public_file.stat().st_mode) == 0o644
    public, secret = mod.parse_certificate(secret_file.read_text())
    assert public == first["public_key"]
    assert mod.z85_encode(mod.curve_public(mod.z85_decode(secret))) == public
    assert secret not in json.dumps(first)

    again_check = run_module(capsys, _ansible_check_mode=True, **args)
    again = run_module(capsys, **args)
    assert (again_check["changed"], again["changed"]) == (False, False)
    assert again["public_key"] == public
    assert mod.parse_certificate(secret_file.read_text())[1] == secret


def test_module_fixes_mode_without_regenerating(tmp_path, capsys):
    args = {"path": str(tmp_path), "name": "agent"}
    first = run_module(capsys, **args)
    secret_file = tmp_path / "agent.key_secret"
    secret_file.chmod(0o644)
    fixed = run_module(capsys, **args)
    assert fixed["changed"] is True and fixed["generated"] is False
    assert fixed["public_key"] == first["public_key"]
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600


def test_module_refuses_half_pair_and_mismatch(tmp_path, capsys):
    args = {"path": str(tmp_path), "name": "manager"}
    run_module(capsys, **args)
    (tmp_path / "manager.key").unlink()
    half = run_module(capsys, **args)
    assert half["failed"] is True and "does not" in half["msg"]
    assert not (tmp_path / "manager.key").exists()

    (tmp_path / "manager.key").write_text(mod.render_certificate(ZMQ_EXAMPLE_PAIRS[1][1]))
    mismatch = run_module(capsys, **args)
    assert mismatch["failed"] is True and "not a valid CURVE keypair" in mismatch["msg"]

    forced = run_module(capsys, force=True, **args)
    assert forced["changed"] is True and forced["generated"] is True
    pub_text = (tmp_path / "manager.key").read_text()
    sec_text = (tmp_path / "manager.key_secret").read_text()
    assert mod.check_pair(pub_text, sec_text) == (forced["public_key"], None)


def test_module_absent(tmp_path, capsys):
    args = {"path": str(tmp_path), "name": "manager"}
    run_module(capsys, **args)
    check = run_module(capsys, _ansible_check_mode=True, state="absent", **args)
    assert check["changed"] is True and (tmp_path / "manager.key").exists()
    gone = run_module(capsys, state="absent", **args)
    assert gone["changed"] is True and not list(tmp_path.iterdir())
    assert run_module(capsys, state="absent", **args)["changed"] is False


def test_module_missing_directory(tmp_path, capsys):
    result = run_module(capsys, path=str(tmp_path / "nope"), name="manager")
    assert result["failed"] is True and "does not exist" in result["msg"]
