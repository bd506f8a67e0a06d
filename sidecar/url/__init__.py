"""The URL grammar and everything pure about URLs: operations, canonical form, signing, limits, variants, routes,
shared paths. No IO, no Pillow."""
