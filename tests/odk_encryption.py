"""What ODK Collect does to a submission of a form with a `base64RsaPublicKey`, written from the
ODK encrypted-forms specification (not from the server's code), and the matching decryption
with the private key, as ODK Briefcase does it.

Collect draws a random 256-bit AES key, encrypts it with the form's RSA public key (OAEP with
SHA-1 and MGF1), and encrypts each media file and then the submission XML with AES-CFB and
PKCS#5 padding; the IV of the n-th file is the MD5 of instanceID + key with its byte
`n % 16` incremented once per file so far. It then sends a small envelope XML naming those
files, the encrypted key and a signature: the RSA-encrypted MD5 of the form id, version,
encrypted key, instanceID and each file's name and MD5.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

_OAEP = OAEP(mgf=MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303 - ODK's choice


@dataclass(frozen=True)
class KeyPair:
    private: rsa.RSAPrivateKey

    @classmethod
    def new(cls) -> KeyPair:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def public_base64(self) -> str:
        """The form's `base64RsaPublicKey`: the DER SubjectPublicKeyInfo, base64."""
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()


def _ivs(instance_id: str, key: bytes) -> list[bytes]:
    seed = bytearray(hashlib.md5(instance_id.encode() + key).digest())
    out = []
    for counter in range(64):
        seed[counter % len(seed)] = (seed[counter % len(seed)] + 1) % 256
        out.append(bytes(seed))
    return out


def _encrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), CFB(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def _decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), CFB(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


@dataclass(frozen=True)
class Encrypted:
    envelope: bytes  # the XML sent as xml_submission_file
    files: dict[str, bytes]  # the encrypted files by name (media first, then submission.xml.enc)


def encrypt_submission(
    public: KeyPair,
    form_id: str,
    version: str,
    instance_id: str,
    xml: bytes,
    media: dict[str, bytes],
    envelope_extra: str = "",
) -> Encrypted:
    key = os.urandom(32)
    ivs = _ivs(instance_id, key)
    encrypted_key = base64.b64encode(public.private.public_key().encrypt(key, _OAEP)).decode()
    files: dict[str, bytes] = {}
    for index, (name, content) in enumerate(media.items()):
        files[f"{name}.enc"] = _encrypt(key, ivs[index], content)
    files["submission.xml.enc"] = _encrypt(key, ivs[len(media)], xml)
    lines = [form_id, version, encrypted_key, instance_id]
    lines += [f"{name}::{hashlib.md5(content).hexdigest()}" for name, content in files.items()]
    digest = hashlib.md5(("\n".join(lines) + "\n").encode()).digest()
    signature = base64.b64encode(public.private.public_key().encrypt(digest, _OAEP)).decode()
    media_xml = "".join(f"<media><file>{name}.enc</file></media>" for name in media)
    envelope = (
        f'<data xmlns="http://opendatakit.org/submissions" xmlns:orx="http://openrosa.org/xforms"'
        f' encrypted="yes" id="{form_id}" version="{version}">'
        f"<base64EncryptedKey>{encrypted_key}</base64EncryptedKey>"
        f"<orx:meta><orx:instanceID>{instance_id}</orx:instanceID></orx:meta>{media_xml}"
        f"<encryptedXmlFile>submission.xml.enc</encryptedXmlFile>"
        f"<base64EncryptedElementSignature>{signature}</base64EncryptedElementSignature>"
        f"{envelope_extra}</data>"
    ).encode()
    return Encrypted(envelope, files)


def decrypt_file(
    pair: KeyPair, encrypted_key_b64: str, instance_id: str, position: int, content: bytes
) -> bytes:
    """The plaintext of the file at `position` (media in envelope order, then the XML)."""
    key = pair.private.decrypt(base64.b64decode(encrypted_key_b64), _OAEP)
    return _decrypt(key, _ivs(instance_id, key)[position], content)
