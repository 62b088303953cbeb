"""PyTorch is optional (the converters, `import`, `bench`): without it, say exactly what to install."""

from __future__ import annotations

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def torch_missing_message(purpose: str, extra: str = "torch") -> str:
    return (
        f"{purpose} needs PyTorch (torch>=2.13,<3), which is not installed. Without a GPU, install "
        f"the CPU build first (PyPI's is a multi-GB CUDA build), then the extra: "
        f"pip install torch --index-url {CPU_INDEX} && pip install 'xnorinfer[{extra}]' "
        f"(with a GPU: pip install 'xnorinfer[{extra}]' alone)"
    )


def require_torch(purpose: str, extra: str = "torch"):
    """The torch module, or ImportError with torch_missing_message."""
    try:
        import torch
    except ImportError:
        raise ImportError(torch_missing_message(purpose, extra)) from None
    return torch
