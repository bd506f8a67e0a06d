"""Client hints in nginx's config: the maps that turn hints into one of a fixed set of widths and ratios."""
from __future__ import annotations

import re

from sidecar import config as config_module
from sidecar.render import nginx as nginx_config


def test_the_nginx_maps_are_rendered_from_the_config() -> None:
    config = config_module.load(env={"SIDECAR_CLIENT_HINTS": "true", "SIDECAR_CLIENT_HINTS_WIDTHS": "200,900",
                                     "SIDECAR_CLIENT_HINTS_DPRS": "1,2.5"})
    site = nginx_config.site(config)
    width_map = site.split("map $http_sec_ch_width", 1)[1].split("\n}", 1)[0]
    rules = re.findall(r'"~\^0\*\((.*)\)\$" (w\d+);', width_map)
    assert [bucket for _, bucket in rules] == ["w200", "w900"]
    for value, bucket in ((0, "w200"), (200, "w200"), (201, "w900"), (900, "w900")):
        assert next(b for pattern, b in rules if re.fullmatch(f"0*({pattern})", str(value))) == bucket
    assert not any(re.fullmatch(f"0*({p})", "901") for p, _ in rules) and '"~^[0-9]+$" w900;' in width_map
    dpr_map = site.split("map $http_sec_ch_dpr", 1)[1].split("\n}", 1)[0]
    assert [bucket for bucket in re.findall(r" (x[0-9_]+);", dpr_map)] == ["x1", "x2_5", "x2_5"]
