"""The long fuzz runs (`make fuzz`, `make fuzz-dc`): run each from the repo root as `python -m fuzz.NAME`."""
