"""`PackedLinear`: a float32 Linear layer whose weight is reordered once into oneDNN's GEMM layout.

`torch.nn.Linear` on CPU calls MKL's sgemm, which copies ("packs") the whole weight into its blocked
layout at every call. With a few rows per call (decoding a batch: 24 rows, or one) that copy costs as
much as the product itself: measured on 2 AVX2 cores, 24 rows through SmolLM2's LM head ran at 55
GFLOP/s against 157 with the weight packed once. The ops used here are the ones torch's own compiler
(inductor) emits when it freezes a model for CPU inference; the arithmetic is float32 throughout.
`agents.models.pack_fp32` swaps these in for the `fp32-packed` weight format.
"""

from __future__ import annotations

import torch


class PackedLinear(torch.nn.Module):
    """y = x W^T + b with W held in oneDNN's layout. Inference only: no gradients, nothing to save."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        # Opaque oneDNN tensors, kept out of parameters and buffers, so nothing trains, saves or moves them.
        self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None)
        self.bias = None if linear.bias is None else linear.bias.detach()

    @property
    def weight_bytes(self) -> int:
        """Bytes a forward reads from the weight (float32, the same as the Linear it replaced)."""
        return self.in_features * self.out_features * 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
