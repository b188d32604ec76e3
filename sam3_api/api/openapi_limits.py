"""List caps that are settings of the running server, stated in /openapi.json.

A request model cannot know the settings when it is defined, so its list fields carry a fixed hard cap
(`max_length`) and a mark naming the setting that the engine checks (`setting_cap("max_prompts")`). When the
document is built, `apply_setting_caps` replaces each mark with `maxItems` = that setting's value, so a client
generator or a fuzzer reads the same limit the server enforces (SAM3_MAX_PROMPTS=64 -> at most 64 boxes).
"""

from __future__ import annotations

from typing import Any

MARK = "x-max-items-setting"


def setting_cap(setting: str, **extra: Any) -> dict[str, Any]:
    """json_schema_extra for a list field capped by `setting` (a Settings attribute), beside any other extra."""
    return {**extra, MARK: setting}


def apply_setting_caps(node: Any, settings) -> None:
    """Write each marked list's maxItems from `settings` and remove the marks (the document is edited in place)."""
    if isinstance(node, list):
        for item in node:
            apply_setting_caps(item, settings)
        return
    if not isinstance(node, dict):
        return
    setting = node.pop(MARK, None)
    if setting is not None:
        cap = int(getattr(settings, setting))
        for branch in (node, *node.get("anyOf", ())):  # `list[X] | None` is anyOf [array, null]
            if isinstance(branch, dict) and branch.get("type") == "array":
                branch["maxItems"] = min(branch.get("maxItems", cap), cap)
    for value in node.values():
        apply_setting_caps(value, settings)
