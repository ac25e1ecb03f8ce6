"""Signed upload URLs: any change to what was signed, or a late use, is refused; the key is
configured or generated once per data directory."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from resources.intake.signing import InvalidSignature, SignedGrant, sign, signing_secret, verify

SECRET = b"k" * 32
GRANT = SignedGrant("PUT", "incoming/v_0123456789abcdef", expires=2_000_000_000, max_bytes=1_234_567)


def test_a_signature_verifies_until_it_expires():
    signature = sign(SECRET, GRANT)
    verify(SECRET, GRANT, signature, now=GRANT.expires - 1)
    with pytest.raises(InvalidSignature, match="expired"):
        verify(SECRET, GRANT, signature, now=GRANT.expires)


@pytest.mark.parametrize(
    "changed",
    [
        replace(GRANT, method="GET"),
        replace(GRANT, key="incoming/v_other"),
        replace(GRANT, expires=GRANT.expires + 3600),
        replace(GRANT, max_bytes=GRANT.max_bytes + 1),
    ],
)
def test_changing_anything_signed_breaks_the_signature(changed):
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(SECRET, changed, sign(SECRET, GRANT), now=0)


@pytest.mark.parametrize("signature", ["", "x" * 43, "é" * 43])
def test_forged_signatures_and_other_keys_are_refused(signature):
    with pytest.raises(InvalidSignature):
        verify(SECRET, GRANT, signature, now=0)
    with pytest.raises(InvalidSignature):
        verify(b"another key", GRANT, sign(SECRET, GRANT), now=0)


def test_a_configured_secret_is_used_as_is(tmp_path):
    assert signing_secret("configured", tmp_path) == b"configured"
    assert not (tmp_path / "secrets").exists()


def test_the_generated_secret_is_made_once_and_shared(tmp_path):
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(signing_secret(None, tmp_path))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1 and len(keys[0]) >= 43
    assert signing_secret(None, tmp_path) == keys[0]
    key_file = tmp_path / "secrets" / "upload_signing.key"
    assert key_file.stat().st_mode & 0o077 == 0  # readable by the owner only
    assert [p.name for p in key_file.parent.iterdir()] == ["upload_signing.key"]  # no temp files left
