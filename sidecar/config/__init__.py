"""The configuration: typed sections, loaded from defaults < TOML < `SIDECAR_*` environment < flags, validated at start."""
