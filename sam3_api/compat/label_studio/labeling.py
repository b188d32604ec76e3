"""Read what this backend needs from a Label Studio labeling config (the XML Label Studio sends).

Output controls, each bound to an <Image> by toName: <BrushLabels> (masks as brush RLE), <PolygonLabels>
(outer contours), <RectangleLabels> (boxes). <KeyPointLabels> (and a RectangleLabels box) are editor
inputs for interactive clicks. Each <Label value="Car"> becomes the text prompts of that label: its
`predicted_values` or `hint` attribute when set ("car, truck": two prompts), else the operator's
SAM3_LABEL_STUDIO_PROMPTS entry for the label, else the label's own value.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ...errors import InvalidPrompt

OUTPUT_KINDS = {"BrushLabels": "brush", "PolygonLabels": "polygon", "RectangleLabels": "rectangle"}
INPUT_KINDS = {"KeyPointLabels": "keypoint"}
MASK_KINDS = ("brush", "polygon")
EXAMPLE = ('<View><Image name="image" value="$image"/><BrushLabels name="tag" toName="image">'
           '<Label value="cat"/></BrushLabels></View>')


@dataclass(frozen=True)
class Control:
    kind: str  # brush | polygon | rectangle | keypoint
    name: str  # from_name of the results
    to_name: str  # the <Image> it labels
    data_key: str  # the task data field holding that image's URL
    prompts: dict[str, tuple[str, ...]]  # label value -> its text prompts


@dataclass(frozen=True)
class LabelingConfig:
    controls: tuple[Control, ...]

    def outputs(self) -> list[Control]:
        return [c for c in self.controls if c.kind in OUTPUT_KINDS.values()]

    def prelabel_outputs(self) -> list[Control]:
        """Mask controls get pre-labels; a rectangle control only in a project with no mask control (a
        RectangleLabels beside BrushLabels is the editor's box tool, not a second copy of every object)."""
        masks = [c for c in self.outputs() if c.kind in MASK_KINDS]
        return masks or self.outputs()

    def mask_output_for(self, label: str) -> Control | None:
        """The brush/polygon control a click of `label` answers in: one that has the label, else the first."""
        masks = [c for c in self.outputs() if c.kind in MASK_KINDS]
        return next((c for c in masks if label in c.prompts), masks[0] if masks else None)


def parse_config(xml: str | None, mapping: dict[str, str]) -> LabelingConfig:
    if not xml or not isinstance(xml, str):
        raise InvalidPrompt(f"label_config is missing: Label Studio sends the project's labeling config, e.g. "
                            f"{EXAMPLE}", field="label_config")
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InvalidPrompt(f"label_config is not valid XML ({exc})", field="label_config") from None
    images = {tag.get("name"): (tag.get("value") or "").lstrip("$") for tag in root.iter("Image")}
    controls = []
    for tag in root.iter():
        kind = OUTPUT_KINDS.get(tag.tag) or INPUT_KINDS.get(tag.tag)
        to_name = tag.get("toName", "")
        if kind is None or to_name not in images:
            continue
        prompts = {label.get("value"): _prompts(label, mapping) for label in tag.iter("Label") if label.get("value")}
        controls.append(Control(kind, tag.get("name", ""), to_name, images[to_name], prompts))
    if not any(c.kind in OUTPUT_KINDS.values() for c in controls):
        raise InvalidPrompt("label_config has no <BrushLabels>, <PolygonLabels> or <RectangleLabels> bound to an "
                            f"<Image> (toName): this backend answers those, e.g. {EXAMPLE}", field="label_config")
    return LabelingConfig(tuple(controls))


def _prompts(label: ET.Element, mapping: dict[str, str]) -> tuple[str, ...]:
    value = label.get("value", "")
    text = label.get("predicted_values") or label.get("hint") or mapping.get(value) or value
    texts = tuple(part.strip() for part in text.split(",") if part.strip())
    return texts or (value,)
