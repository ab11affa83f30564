#!/usr/bin/python
# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""Create the ZeroMQ CURVE certificate pair Backend.AI uses for manager/agent RPC."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backendai_rpc_keypair
short_description: Create a ZeroMQ CURVE keypair for Backend.AI RPC (NAME.key, NAME.key_secret)
version_added: "0.1.0"
description:
  - Writes C(NAME.key) (public certificate) and C(NAME.key_secret) (secret certificate) into a
    directory, in the ZeroMQ certificate text format that pyzmq's C(zmq.auth.load_certificate)
    reads and C(backend.ai mgr generate-rpc-keypair) writes. The manager points
    C(rpc-auth-manager-keypair) at its C(.key_secret); each agent points
    C(rpc-auth-manager-public-key) at the manager's C(.key) and C(rpc-auth-agent-keypair) at its
    own C(.key_secret).
  - The keys are generated on the node with the C(cryptography) library (X25519, RFC 7748) and
    encoded in Z85 (ZeroMQ RFC 32), so the module works before any Backend.AI virtualenv exists.
    The secret key comes from C(os.urandom).
  - An existing valid pair is never regenerated unless O(force=true); only owner, group and
    modes are corrected. A pair is valid when both files parse, the secret file's public key is
    the Curve25519 public key of its secret key, and the public file carries the same key.
  - If only one of the two files exists, or the files do not match, the module fails (nothing
    is overwritten) unless O(force=true).
  - Unlike the CLI, the secret file is created with mode 0600 from the start, and the secret
    key is never printed or returned.
requirements:
  - cryptography (Debian and Ubuntu package C(python3-cryptography); the os_prep role installs it)
author:
  - backendai.cluster maintainers
options:
  path:
    description:
      - Directory that holds the two files. It must exist.
    type: path
    required: true
  name:
    description:
      - Base name of the files, for example C(manager) gives C(manager.key) and
        C(manager.key_secret).
    type: str
    required: true
  state:
    description:
      - C(present) creates the pair if it is missing; C(absent) removes both files.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - Generate a new pair even when a valid one exists, and replace a broken or half-present
        pair. Every peer holding the old public key must then be given the new one.
    type: bool
    default: false
  owner:
    description: Owner of both files (name or uid).
    type: str
  group:
    description: Group of both files (name or gid).
    type: str
  secret_mode:
    description: Mode of C(NAME.key_secret).
    type: raw
    default: "0600"
  public_mode:
    description: Mode of C(NAME.key).
    type: raw
    default: "0644"
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Nothing is written; RV(public_key) is returned only for an existing pair.
  diff_mode:
    support: full
    details: Shows the public key and the modes before and after (never the secret key).
  idempotent:
    description: Running the module again after a successful run reports no change.
    support: full
  platform:
    platforms: posix
notes:
  - The header comment of each file records the generation time; it is not part of the keys
    and is ignored when an existing pair is checked.
  - The Curve25519 arithmetic is plain Python and not constant-time; it runs once, locally,
    at key creation, which leaves no remote timing channel.
seealso:
  - name: ZeroMQ RFC 32 (Z85)
    description: The encoding of the keys in the certificate files.
    link: https://rfc.zeromq.org/spec/32/
  - name: RFC 7748
    description: Curve25519 (X25519) used by ZeroMQ CURVE.
    link: https://www.rfc-editor.org/rfc/rfc7748
"""

EXAMPLES = r"""
- name: Key directory of the manager
  ansible.builtin.file:
    path: /etc/backend.ai/keys
    state: directory
    owner: root
    group: backendai
    mode: "0750"

- name: RPC keypair of the manager
  backendai.cluster.backendai_rpc_keypair:
    path: /etc/backend.ai/keys
    name: manager
    owner: root
    group: backendai
    secret_mode: "0640"
  register: manager_rpc

- name: Give the agents the manager's public key
  ansible.builtin.copy:
    dest: /etc/backend.ai/keys/manager.key
    content: |
      metadata
      curve
          public-key = "{{ hostvars[groups['manager'][0]].manager_rpc.public_key }}"
    mode: "0644"
  when: inventory_hostname in groups['agents']

- name: Own RPC keypair of each agent
  backendai.cluster.backendai_rpc_keypair:
    path: /etc/backend.ai/keys
    name: agent
  when: inventory_hostname in groups['agents']
"""

RETURN = r"""
changed:
  description: Whether a file was created, replaced, removed, or had its owner/group/mode fixed.
  returned: always
  type: bool
public_key:
  description: The Z85-encoded public key (40 characters). Null when no pair exists (absent,
    or check mode before creation).
  returned: always
  type: str
  sample: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
public_file:
  description: Path of the public certificate.
  returned: always
  type: str
  sample: /etc/backend.ai/keys/manager.key
secret_file:
  description: Path of the secret certificate.
  returned: always
  type: str
  sample: /etc/backend.ai/keys/manager.key_secret
generated:
  description: Whether a new keypair was generated (or would be, in check mode).
  returned: always
  type: bool
"""

import datetime  # noqa: E402 - the documentation strings come first in Ansible modules
import os  # noqa: E402
import tempfile  # noqa: E402
import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

try:
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
except ImportError:
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None

# --------------------------------------------------------------------------------------------
# Z85 (ZeroMQ RFC 32): 4 bytes <-> 5 characters, big-endian base 85.
# --------------------------------------------------------------------------------------------

Z85_ALPHABET = (
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
)
_Z85_INDEX = {c: i for i, c in enumerate(Z85_ALPHABET)}


def z85_encode(data):
    if len(data) % 4:
        raise ValueError("Z85 encodes a multiple of 4 bytes")
    out = []
    for i in range(0, len(data), 4):
        value = int.from_bytes(data[i:i + 4], "big")
        chunk = []
        for _ in range(5):
            value, digit = divmod(value, 85)
            chunk.append(Z85_ALPHABET[digit])
        out.extend(reversed(chunk))
    return "".join(out)


def z85_decode(text):
    if isinstance(text, bytes):
        text = text.decode("ascii")
    if len(text) % 5:
        raise ValueError("Z85 text must be a multiple of 5 characters")
    out = bytearray()
    for i in range(0, len(text), 5):
        value = 0
        for char in text[i:i + 5]:
            try:
                value = value * 85 + _Z85_INDEX[char]
            except KeyError:
                raise ValueError(f"invalid Z85 character {char!r}") from None
        if value > 0xFFFFFFFF:
            raise ValueError("Z85 group out of range")
        out += value.to_bytes(4, "big")
    return bytes(out)


# --------------------------------------------------------------------------------------------
# X25519 (RFC 7748), from the cryptography library.
# --------------------------------------------------------------------------------------------


def x25519(scalar, u_coordinate):
    """Scalar multiplication on Curve25519: both arguments and the result are 32 bytes."""
    if len(scalar) != 32 or len(u_coordinate) != 32:
        raise ValueError("X25519 takes 32-byte inputs")
    private = X25519PrivateKey.from_private_bytes(scalar)
    return private.exchange(X25519PublicKey.from_public_bytes(u_coordinate))


def curve_public(secret):
    """The CURVE public key (32 bytes) of a secret key (32 bytes)."""
    private = X25519PrivateKey.from_private_bytes(secret)
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def curve_keypair():
    """A new (public, secret) pair, both Z85 text, like pyzmq's zmq.curve_keypair()."""
    secret = os.urandom(32)
    return z85_encode(curve_public(secret)), z85_encode(secret)


# --------------------------------------------------------------------------------------------
# Certificate files
# --------------------------------------------------------------------------------------------

_PUBLIC_HEADER = (
    "#   ****  Generated on {now} by backendai.cluster  ****\n"
    "#   ZeroMQ CURVE Public Certificate\n"
    "#   Hand this file to every peer that must trust the holder of the matching\n"
    "#   secret certificate.\n"
    "\n"
)
_PRIVATE_HEADER = (
    "#   ****  Generated on {now} by backendai.cluster  ****\n"
    "#   ZeroMQ CURVE **Secret** Certificate\n"
    "#   Keep this file private: whoever can read it can act as its owner.\n"
    "\n"
)


def render_certificate(public_key, secret_key=None, metadata=None, now=None):
    """The text of a certificate file; with ``secret_key`` it is the secret certificate."""
    now = now if now is not None else datetime.datetime.now()
    header = _PRIVATE_HEADER if secret_key else _PUBLIC_HEADER
    lines = [header.format(now=now), "metadata\n"]
    for key, value in (metadata or {}).items():
        lines.append(f"    {key} = {value}\n")
    lines.append("curve\n")
    lines.append(f'    public-key = "{public_key}"\n')
    if secret_key:
        lines.append(f'    secret-key = "{secret_key}"\n')
    return "".join(lines)


def parse_certificate(text):
    """(public_key, secret_key) as text, read the way zmq.auth.load_certificate reads them."""
    public_key = secret_key = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#"):
            continue
        if line.startswith("public-key"):
            public_key = line.split("=", 1)[1].strip(" \t'\"") if "=" in line else ""
        if line.startswith("secret-key"):
            secret_key = line.split("=", 1)[1].strip(" \t'\"") if "=" in line else ""
        if public_key and secret_key:
            break
    return public_key, secret_key


def check_pair(public_text, secret_text):
    """Return (public_key, None) for a valid pair, or (None, reason) when it is not valid."""
    pub_of_secret_file, secret = parse_certificate(secret_text)
    pub_of_public_file, stray_secret = parse_certificate(public_text)
    if not secret:
        return None, "the secret file has no secret-key"
    if not pub_of_public_file:
        return None, "the public file has no public-key"
    if stray_secret:
        return None, "the public file contains a secret-key"
    try:
        secret_bytes = z85_decode(secret)
        public_bytes = z85_decode(pub_of_public_file)
    except ValueError as exc:
        return None, f"a key is not valid Z85 ({exc})"
    if len(secret_bytes) != 32 or len(public_bytes) != 32:
        return None, "a key is not 32 bytes long"
    derived = z85_encode(curve_public(secret_bytes))
    if pub_of_secret_file and pub_of_secret_file != derived:
        return None, "the public-key in the secret file does not belong to its secret-key"
    if pub_of_public_file != derived:
        return None, "the public file does not belong to the secret file"
    return derived, None


def _read(path):
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def _write_atomic(module, path, text, mode):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path), dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        module.fail_json(msg=f"cannot write {path}: {exc}")


def _mode_int(module, value, name):
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 8)
    except ValueError:
        module.fail_json(msg=f"{name} must be an octal mode such as '0600', not {value!r}")


def _file_state(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"mode": f"{st.st_mode & 0o7777:04o}", "uid": st.st_uid, "gid": st.st_gid}


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "force": {"type": "bool", "default": False},
            "owner": {"type": "str"},
            "group": {"type": "str"},
            "secret_mode": {"type": "raw", "default": "0600"},
            "public_mode": {"type": "raw", "default": "0644"},
        },
        supports_check_mode=True,
    )
    if CRYPTOGRAPHY_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib("cryptography"),
                         exception=CRYPTOGRAPHY_IMPORT_ERROR)
    p = module.params
    name = p["name"]
    if not name or "/" in name or name in (".", ".."):
        module.fail_json(msg=f"name must be a plain file name, not {name!r}")
    directory = p["path"]
    public_file = os.path.join(directory, name + ".key")
    secret_file = os.path.join(directory, name + ".key_secret")
    result = {
        "changed": False,
        "generated": False,
        "public_key": None,
        "public_file": public_file,
        "secret_file": secret_file,
    }
    have_public = os.path.exists(public_file)
    have_secret = os.path.exists(secret_file)
    before = {
        "public_key": None,
        "public_file": _file_state(public_file),
        "secret_file": _file_state(secret_file),
    }

    if p["state"] == "absent":
        if have_public or have_secret:
            result["changed"] = True
            if not module.check_mode:
                for path in (public_file, secret_file):
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        module.fail_json(msg=f"cannot remove {path}: {exc}", **result)
            result["diff"] = {
                "before": {"public_file": public_file if have_public else None,
                           "secret_file": secret_file if have_secret else None},
                "after": {"public_file": None, "secret_file": None},
            }
        module.exit_json(**result)

    if not os.path.isdir(directory):
        module.fail_json(msg=f"directory {directory} does not exist", **result)
    secret_mode = _mode_int(module, p["secret_mode"], "secret_mode")
    public_mode = _mode_int(module, p["public_mode"], "public_mode")

    generate = False
    if have_public and have_secret:
        try:
            public_key, problem = check_pair(_read(public_file), _read(secret_file))
        except OSError as exc:
            public_key, problem = None, f"cannot read the files ({exc})"
        if public_key:
            before["public_key"] = public_key
        if p["force"]:
            generate = True
        elif problem:
            module.fail_json(
                msg=f"{public_file} and {secret_file} are not a valid CURVE keypair: {problem}. "
                "Fix or remove them, or set force=true to generate a new pair (every peer then "
                "needs the new public key).",
                **result,
            )
        else:
            result["public_key"] = public_key
    elif have_public or have_secret:
        if not p["force"]:
            present, missing = (
                (public_file, secret_file) if have_public else (secret_file, public_file)
            )
            module.fail_json(
                msg=f"{present} exists but {missing} does not; refusing to guess. Restore the "
                "missing file, remove the other one, or set force=true to generate a new pair.",
                **result,
            )
        generate = True
    else:
        generate = True

    if generate:
        result["changed"] = True
        result["generated"] = True
        if module.check_mode:
            result["public_key"] = None
        else:
            public_key, secret_key = curve_keypair()
            module.no_log_values.add(secret_key)
            now = datetime.datetime.now()
            # Secret first: a crash in between leaves a detectable half pair, not a public key
            # without its secret.
            _write_atomic(
                module, secret_file, render_certificate(public_key, secret_key, now=now),
                secret_mode,
            )
            _write_atomic(module, public_file, render_certificate(public_key, now=now), public_mode)
            result["public_key"] = public_key

    for path, mode in ((secret_file, secret_mode), (public_file, public_mode)):
        if module.check_mode and not os.path.exists(path):
            continue
        file_args = {
            "path": path,
            "mode": mode,
            "owner": p["owner"],
            "group": p["group"],
            "secontext": [None, None, None],
            "attributes": None,
        }
        # In check mode these only report whether something would change.
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])

    new_key = result["public_key"] or ("(a new key)" if generate else None)
    result["diff"] = {
        "before": {
            "public_key": before["public_key"],
            "public_mode": (before["public_file"] or {}).get("mode"),
            "secret_mode": (before["secret_file"] or {}).get("mode"),
        },
        "after": {
            "public_key": new_key,
            "public_mode": f"{public_mode:04o}",
            "secret_mode": f"{secret_mode:04o}",
        },
    }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
