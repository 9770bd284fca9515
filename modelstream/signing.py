"""Signed models and policies: Ed25519 signatures by a publisher's private key, checked by the job against
its trusted public keys (docs/security.md).

A ModelDescriptor (fields 14, 15) or RolloutPolicy (13, 14) is signed over the message serialized
deterministically with ``publisher_signature`` cleared: every other field is covered, ``signing_key_id``
too. A key's id is the first 16 hex digits of the SHA-256 of its raw 32-byte public key.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from protobufs.modelstream_pb2 import ModelDescriptor, PerformancePolicy, RolloutPolicy

Signable = ModelDescriptor | RolloutPolicy | PerformancePolicy
PRIVATE_KEY_FILE = "private.pem"
PUBLIC_KEY_FILE = "public.pem"


class Untrusted(Exception):
    """A model or policy that is unsigned, signed by a key not trusted, or whose signature does not match."""


class KeyFileError(ValueError):
    """A key file that is missing, unreadable or not an Ed25519 key; the message names the file."""


@dataclass(frozen=True, eq=False)
class Trust:
    """What the job asks of models and policies: with ``required``, a valid signature by one of ``keys``
    (by key id); without, nothing (signatures are not checked)."""

    keys: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)
    required: bool = False

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], required: bool) -> Trust:
        """The public keys in ``paths`` (PEM files); KeyFileError names a file that does not load, and
        ValueError says when signatures are required but no key is trusted."""
        keys = load_trusted_keys(paths)
        if required and not keys:
            raise ValueError(
                "require_signed_models needs at least one trusted key: give --trusted-keys FILE[,FILE] "
                "(public keys of `modelstream keys generate`)"
            )
        return cls(keys, required)


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_bytes(message: Signable) -> bytes:
    """What a signature covers: the message serialized deterministically with its signature cleared."""
    unsigned = copy.deepcopy(message)
    unsigned.ClearField("publisher_signature")
    return unsigned.SerializeToString(deterministic=True)


def sign(message: Signable, private_key: Ed25519PrivateKey) -> str:
    """Set the message's ``signing_key_id`` and then its ``publisher_signature``; returns the key id.

    A model by ``location`` cannot be signed: its bytes are not in the message (ValueError)."""
    if isinstance(message, ModelDescriptor) and message.WhichOneof("MessageContent") == "location":
        raise ValueError(
            "a model published by location cannot be signed (its bytes are not in the message): "
            "publish the model's file instead of --location"
        )
    signer = key_id(private_key.public_key())
    message.signing_key_id = signer
    message.publisher_signature = private_key.sign(signed_bytes(message))
    return signer


def verify(message: Signable, trusted: Mapping[str, Ed25519PublicKey]) -> str:
    """The id of the trusted key whose signature the message carries; Untrusted says why not."""
    what = "model" if isinstance(message, ModelDescriptor) else "policy"
    if isinstance(message, ModelDescriptor) and message.WhichOneof("MessageContent") == "location":
        raise Untrusted(
            "a model by location cannot be verified (its bytes are not in the message): publish its "
            "bytes, signed, instead of a location"
        )
    if not message.publisher_signature:
        raise Untrusted(f"the {what} is unsigned (publisher_signature is empty)")
    signer = message.signing_key_id
    public_key = trusted.get(signer)
    if public_key is None:
        known = ", ".join(sorted(trusted)) or "none"
        signed_by = signer or "(no key id)"
        raise Untrusted(f"the {what} is signed by key {signed_by} which is not trusted (trusted: {known})")
    try:
        public_key.verify(message.publisher_signature, signed_bytes(message))
    except InvalidSignature:
        raise Untrusted(
            f"the {what}'s signature does not match (tampered or wrong key): signed by key {signer}"
        ) from None
    return signer


# -- key files -------------------------------------------------------------------------------------


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"cannot read {what} {path}: {e.strerror or e}") from None


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file (PKCS8, unencrypted), as `keys generate` writes it."""
    path = Path(path)
    data = _read(path, "private key file")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key: {e}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM file (SubjectPublicKeyInfo), as `keys generate` writes it."""
    path = Path(path)
    data = _read(path, "trusted key file")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyFileError(f"{path} is not a PEM public key: {e}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path} holds a {type(key).__name__}, not an Ed25519 public key")
    return key


def key_paths(text: str) -> list[str]:
    """The files of a ``trusted_keys`` setting: separated by ","; blanks ignored."""
    return [item.strip() for item in text.split(",") if item.strip()]


def load_trusted_keys(paths: Iterable[str | Path]) -> dict[str, Ed25519PublicKey]:
    """The public keys in ``paths`` by key id (several: a rotation, each trusted)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        key = load_public_key(path)
        keys[key_id(key)] = key
    return keys


@dataclass(frozen=True)
class KeyPair:
    private_path: Path
    public_path: Path
    key_id: str


def generate_key_pair(directory: str | Path) -> KeyPair:
    """A new Ed25519 key pair in ``directory`` (made if missing): private.pem (PKCS8, unencrypted, mode
    0600) and public.pem. Existing key files are never overwritten (FileExistsError)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_KEY_FILE, directory / PUBLIC_KEY_FILE
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(errno.EEXIST, "a key file is there already", str(path))
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # created with mode 0600 from the start: the key is never readable by others, not even briefly
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(private_pem)
    public_path.write_bytes(public_pem)
    return KeyPair(private_path, public_path, key_id(key.public_key()))
