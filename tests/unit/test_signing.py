from sidecar.url.signing import Signer


def test_sign_and_verify_with_rotation() -> None:
    old = Signer(("old-key-0123456789",))
    rotated = Signer(("new-key-0123456789", "old-key-0123456789"))
    signature = old.sign("a/b.jpg/w100.jpg")
    assert len(signature) == 16 and signature.replace("-", "").replace("_", "").isalnum()
    assert rotated.verify("a/b.jpg/w100.jpg", signature)
    assert rotated.sign("a/b.jpg/w100.jpg") != signature  # the first key signs
    assert not rotated.verify("a/b.jpg/w101.jpg", signature)
    assert not Signer(("new-key-0123456789",)).verify("a/b.jpg/w100.jpg", signature)
    assert not rotated.verify("a/b.jpg/w100.jpg", "")
