"""verwalter/: the templates rendered with the example variables (tests/support/verwalter.py stands in for
verwalter_render), the Lithos process config checked against Lithos's keys, and the templates' validators."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.render import units as deploy_config
from tests.support import verwalter
from tests.support.verwalter import TEMPLATES

PROCESS_KEYS = {"kind", "image", "config", "instances", "variables", "ip-addresses", "extra-secrets-namespaces"}


def test_lithos_process_config_names_the_image_and_container_config(
        rendered: dict[str, verwalter.Rendered], variables: dict[str, Any]) -> None:
    lithos = rendered["lithos.render.yaml"]
    processes = yaml.safe_load(lithos.files["processes"].read_text())
    assert set(processes) == set(variables["daemons"])
    for name, process in processes.items():
        assert set(process) <= PROCESS_KEYS, set(process) - PROCESS_KEYS
        assert process["kind"] == "Daemon" and process["instances"] == 1
        assert process["image"] == variables["daemons"][name]["image"]
        assert process["config"] == deploy_config.LITHOS_IMAGE_PATH  # where the image build puts lithos.yaml
    assert lithos.commands == [("RootCommand", ["lithos_switch", "resize-sidecar", str(lithos.files["processes"])])]


def test_two_daemons_two_sockets(tmp_path: Path, variables: dict[str, Any]) -> None:
    variables["daemons"]["sidecar-next"] = {"image": "resize-sidecar/0.2.0", "config": "/config/resize-sidecar.yaml"}
    result = verwalter.render_dir(TEMPLATES, variables, tmp_path)
    assert len(yaml.safe_load(result["lithos.render.yaml"].files["processes"].read_text())) == 2
    upstream = result["nginx.render.yaml"].files["upstream"].read_text()
    assert upstream.count("server unix:") == 2 and "resize-sidecar_sidecar-next.0.sock" in upstream


def test_unsafe_values_are_refused_by_the_templates_validators(tmp_path: Path, variables: dict[str, Any]) -> None:
    variables["daemons"]["sidecar"]["image"] = "x\ninjected: true"
    with pytest.raises(verwalter.TemplateError, match="validator"):
        verwalter.render_dir(TEMPLATES, variables, tmp_path)
