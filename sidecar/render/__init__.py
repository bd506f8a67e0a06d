"""Deployment files rendered from the config: nginx's config, the systemd units and the Lithos container config."""
