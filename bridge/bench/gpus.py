"""Peak dense FLOP/s of common NVIDIA GPUs, for the forward table's "of peak" column (how much of the chip one
sampler step uses).

The figures are the vendors' datasheet numbers, not measured here: fp32 on the CUDA cores (no tensor cores), and
fp16/bf16 on the tensor cores with fp32 accumulation, dense (the datasheets' larger "with sparsity" figures are
twice these). The fp32 fast path lets cuDNN use TF32 tensor cores, so its row can pass 100 % of the fp32 figure.
"""

from __future__ import annotations

import torch

# Name as torch.cuda.get_device_name() contains it -> (fp32, fp16/bf16) TFLOP/s. Searched in this order: a name
# that contains another (H200 NVL, H200; H100 PCIe, H100; A100, A10) comes first.
PEAK_TFLOPS = {
    "H200 NVL": (60.0, 835.0),  # NVIDIA H200 datasheet (NVL): FP32 60, BF16/FP16 1,671 with sparsity
    "H200": (67.0, 989.0),  # NVIDIA H200 Tensor Core GPU datasheet (SXM): FP32 67, BF16/FP16 1,979 with sparsity
    "H100 PCIe": (51.0, 756.0),  # NVIDIA H100 Tensor Core GPU datasheet (PCIe): FP32 51, FP16 1,513 with sparsity
    "H100": (67.0, 989.0),  # NVIDIA H100 Tensor Core GPU datasheet (SXM): FP32 67, BF16/FP16 1,979 with sparsity
    "A100": (19.5, 312.0),  # NVIDIA A100 Tensor Core GPU datasheet: FP32 19.5, BF16/FP16 312 (624 with sparsity)
    "L40S": (91.6, 362.0),  # NVIDIA L40S datasheet: FP32 91.6, BF16/FP16 362.05 (733 with sparsity)
    "RTX 4090": (82.6, 165.2),  # NVIDIA Ada GPU architecture whitepaper, appendix: FP16 with FP32 accumulate
    "A10": (31.2, 125.0),  # NVIDIA A10 Tensor Core GPU datasheet: FP32 31.2, BF16/FP16 125 (250 with sparsity)
    "T4": (8.1, 65.0),  # NVIDIA T4 datasheet: FP32 8.1, mixed FP16/FP32 65 (no bf16 tensor cores)
}


def peak_tflops(device: torch.device, dtype: torch.dtype) -> float | None:
    """The datasheet peak for ``dtype`` on this GPU, or None for a GPU not in the table."""
    name = torch.cuda.get_device_name(device)
    for key, (fp32, half) in PEAK_TFLOPS.items():
        if key in name:
            return fp32 if dtype == torch.float32 else half
    return None
