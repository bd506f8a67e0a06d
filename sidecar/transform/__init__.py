"""Bytes of an original + operations -> bytes of a rendition (see `pipeline.STEPS`)."""
