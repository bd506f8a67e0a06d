"""URL signatures with plain values: rotation, and every one of the 16 characters counts."""
from __future__ import annotations

import pytest

from sidecar.url.signing import SIGNATURE_BYTES, Signer
from tests.support.signing import other_character

PAYLOAD = "a/b.jpg/w100.jpg"


def test_sign_and_verify_with_rotation() -> None:
    old = Signer(("old-key-0123456789",))
    rotated = Signer(("new-key-0123456789", "old-key-0123456789"))
    signature = old.sign(PAYLOAD)
    assert len(signature) == 16 and signature.replace("-", "").replace("_", "").isalnum()
    assert rotated.verify(PAYLOAD, signature)
    assert rotated.sign(PAYLOAD) != signature  # the first key signs
    assert not rotated.verify("a/b.jpg/w101.jpg", signature)
    assert not Signer(("new-key-0123456789",)).verify(PAYLOAD, signature)
    assert not rotated.verify(PAYLOAD, "")


def test_every_key_of_a_rotation_verifies_what_it_signed() -> None:
    keys = ("newest-key-0123456789", "middle-key-0123456789", "oldest-key-0123456789")
    rotated = Signer(keys)
    for key in keys:
        assert rotated.verify(PAYLOAD, Signer((key,)).sign(PAYLOAD)), key
    assert rotated.verify(PAYLOAD, rotated.sign(PAYLOAD))
    assert rotated.sign(PAYLOAD) == Signer(keys[:1]).sign(PAYLOAD)


@pytest.mark.parametrize("position", range(16))
def test_a_signature_with_any_one_character_changed_is_refused(position: int) -> None:
    signer = Signer(("the-signing-key-0123456789", "a-retired-key-0123456789"))
    signature = signer.sign(PAYLOAD)
    assert len(signature) == 16 == SIGNATURE_BYTES * 4 // 3
    assert signer.verify(PAYLOAD, signature)
    assert not signer.verify(PAYLOAD, other_character(signature, position))


def test_a_signature_of_the_wrong_length_is_refused() -> None:
    signer = Signer(("the-signing-key-0123456789",))
    signature = signer.sign(PAYLOAD)
    for wrong in (signature[:-1], signature + "A", signature[:8], signature * 2):
        assert not signer.verify(PAYLOAD, wrong), wrong


def test_a_signer_needs_a_key() -> None:
    with pytest.raises(ValueError, match="^Signer needs at least one key$"):
        Signer(())
