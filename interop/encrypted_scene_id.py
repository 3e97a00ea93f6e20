"""Computes the EncryptedSceneId vectors of V3 encryption mode with Python's `cryptography`,
independently of the crate, and prints them as JSON. interop/run.sh checks that the output is
exactly tests/vectors/encrypted-scene-id.json, which the crate's tests reproduce.

The recipe, from Alibaba's encryption-mode guide: Base64(IV || AES-256-CBC with PKCS#7 of
"sceneId&timestamp&expireTime"), the ekey being Base64 of 32 bytes. A fixed key and IV make
the output repeatable; real ones are random.
"""

import base64
import json

import cryptography
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY = bytes(range(32))
IV = bytes(range(0xA0, 0xB0))
CASES = [("scene01", 1700000000, 3600), ("1ezx8pyn", 1764115200, 86400), ("s", 1, 1)]


def encrypted_scene_id(scene, timestamp, lifetime):
    plaintext = f"{scene}&{timestamp}&{lifetime}".encode()
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(KEY), modes.CBC(IV)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return plaintext.decode(), base64.b64encode(IV + ciphertext).decode()


cases = []
for scene, timestamp, lifetime in CASES:
    plaintext, token = encrypted_scene_id(scene, timestamp, lifetime)
    cases.append(
        {
            "scene_id": scene,
            "timestamp": timestamp,
            "expire_time": lifetime,
            "plaintext": plaintext,
            "encrypted_scene_id": token,
        }
    )
print(
    json.dumps(
        {
            "made_with": f"Python cryptography {cryptography.__version__} "
            "(AES-256-CBC, PKCS7, Base64 of IV then ciphertext)",
            "ekey": base64.b64encode(KEY).decode(),
            "iv_hex": IV.hex(),
            "cases": cases,
        },
        indent=2,
    )
)
