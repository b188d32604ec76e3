"""Under bf16, the ViT applies its rotary position embedding in bf16.

transformers' Sam3ViTRoPEAttention casts the query and key to fp32 for the rotation and back afterwards
(`apply_rotary_pos_emb_2d`). Under bf16 autocast that is four casts of a (windows, heads, tokens, head_dim)
tensor and the rotation's multiplies and adds in fp32, in each of the 32 layers: measured on one full-size
image on 2 CPU cores with AMX, the ViT took 6.2 s with the fp32 rotation and 4.9-5.7 s with it in bf16 (one
process, interleaved): the largest avoidable cost profiling found in the ViT. The query and key leave the projections
in bf16 and enter the attention in bf16 either way; only the rotation's own rounding changes (the ViT's
output moved by 0.5 % relative, README, Performance). Under fp32 nothing changes: the rotation is the same
arithmetic, bit for bit (tests/unit/test_precision.py).
"""

from __future__ import annotations

import torch
from transformers.models.sam3 import modeling_sam3
from transformers.models.sam3.modeling_sam3 import Sam3ViTRoPEAttention


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """transformers' 2-D rotation (apply_rotary_pos_emb_2d), in x's own dtype."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return (x * cos) + (modeling_sam3.rotate_pairwise(x) * sin)


class ComputeDtypeRoPEAttention(Sam3ViTRoPEAttention):
    """Sam3ViTRoPEAttention whose rotation runs in the query's dtype; the rest is transformers' forward."""

    def forward(self, hidden_states: torch.Tensor, position_embeddings: tuple[torch.Tensor, torch.Tensor],
                **kwargs) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch_size, height, width, _ = hidden_states.shape
        new_shape = (batch_size, height * width, self.num_attention_heads, self.head_dim)
        query = self.q_proj(hidden_states).view(*new_shape).transpose(1, 2)
        key = self.k_proj(hidden_states).view(*new_shape).transpose(1, 2)
        value = self.v_proj(hidden_states).view(*new_shape).transpose(1, 2)
        cos, sin = position_embeddings
        query, key = rotate(query, cos, sin), rotate(key, cos, sin)
        attention = modeling_sam3.ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, modeling_sam3.eager_attention_forward)
        output, weights = attention(self, query, key, value, attention_mask=None,
                                    dropout=self.attention_dropout if self.training else 0.0,
                                    scaling=self.scaling, is_causal=self.is_causal, **kwargs)
        return self.o_proj(output.reshape(batch_size, height, width, -1).contiguous()), weights


def rotate_in_compute_dtype(model: torch.nn.Module) -> int:
    """Switch every ViT RoPE attention in `model` (the ViT, or a whole SAM 3 model) to ComputeDtypeRoPEAttention,
    in place; returns how many."""
    switched = 0
    for module in model.modules():
        if type(module) is Sam3ViTRoPEAttention:
            module.__class__ = ComputeDtypeRoPEAttention
            switched += 1
    return switched
