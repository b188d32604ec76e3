"""What request schemas cannot know when their models are defined, written into /openapi.json: list caps that
are settings of the running server, and one-of members that a null does not meet.

A request model cannot know the settings when it is defined, so its list fields carry a fixed hard cap
(`max_length`) and a mark naming the setting that the engine checks (`setting_cap("max_prompts")`). When the
document is built, `apply_setting_caps` replaces each mark with `maxItems` = that setting's value, so a client
generator or a fuzzer reads the same limit the server enforces (SAM3_MAX_PROMPTS=64 -> at most 64 boxes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

MARK = "x-max-items-setting"


def setting_cap(setting: str, **extra: Any) -> dict[str, Any]:
    """json_schema_extra for a list field capped by `setting` (a Settings attribute), beside any other extra."""
    return {**extra, MARK: setting}


def objects_in(node: Any) -> Iterator[dict]:
    """Every JSON object in `node`, each before its children: a caller may edit the one it is given (its
    children are listed only after it comes back), not the ones above it."""
    if isinstance(node, list):
        for item in node:
            yield from objects_in(item)
    elif isinstance(node, dict):
        yield node
        for value in list(node.values()):
            yield from objects_in(value)


def apply_setting_caps(document: dict, settings) -> None:
    """Write each marked list's maxItems from `settings` and remove the marks (the document is edited in place)."""
    for node in objects_in(document):
        setting = node.pop(MARK, None)
        if setting is None:
            continue
        cap = int(getattr(settings, setting))
        for branch in (node, *node.get("anyOf", ())):  # `list[X] | None` is anyOf [array, null]
            if isinstance(branch, dict) and branch.get("type") == "array":
                branch["maxItems"] = min(branch.get("maxItems", cap), cap)


def require_values(document: dict) -> None:
    """A one-of group's `required` is met by a null as well, while the server reads a null as no value (`{"image_urls":
    null, "image_dir": ...}` is the image_dir variant): each group member also says its field is not null."""
    for node in objects_in(document):
        properties = node.get("properties")
        if not isinstance(properties, dict):
            continue
        for part in _group_members(node):
            for name in part["required"]:
                value = _non_null(properties.get(name))
                if value is not None:
                    part.setdefault("properties", {})[name] = value


def _group_members(node: dict) -> list[dict]:
    """The members of the node's anyOf / oneOf groups (its own, and those nested in its allOf)."""
    holders = [node, *(part for part in node.get("allOf", ()) if isinstance(part, dict))]
    return [member for holder in holders for group in ("anyOf", "oneOf") for member in holder.get(group, ())
            if isinstance(member, dict) and isinstance(member.get("required"), list)]


def _non_null(field: Any) -> dict | None:
    """{"type": ...} of a nullable field's other variants; None for a field that takes no null."""
    variants = field.get("anyOf", []) if isinstance(field, dict) else []
    if not any(variant.get("type") == "null" for variant in variants):
        return None
    types = sorted({variant["type"] for variant in variants if variant.get("type") not in (None, "null")})
    return {"type": types[0] if len(types) == 1 else types} if types else None
