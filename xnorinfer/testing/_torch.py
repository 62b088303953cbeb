"""What compare needs from a torch module: its output and every submodule's output, by qualified
name. Imported only when a torch module is given, so xnorinfer.testing works without torch."""

from __future__ import annotations

import numpy as np


def is_module(obj) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(obj, torch.nn.Module)


def module_outputs(module, x_nchw: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(module(x) as float64, {qualified name: output} for each submodule called exactly once).
    Runs in eval mode without gradients and restores the module's mode. A module called twice
    (ReActNet's one BinaryActivation for two signs) has no single output and is left out."""
    import torch

    outputs, calls = {}, {}

    def hook(name):
        def record(_module, _inputs, output):
            calls[name] = calls.get(name, 0) + 1
            if isinstance(output, torch.Tensor):
                # a copy: an in-place ReLU after this module would change the tensor it returned
                outputs[name] = output.detach().to("cpu", torch.float64).numpy().copy()

        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in module.named_modules() if name]
    training = module.training
    try:
        module.eval()
        with torch.no_grad():
            y = module(torch.from_numpy(np.ascontiguousarray(x_nchw, np.float32)))
    finally:
        module.train(training)
        for h in handles:
            h.remove()
    return y.detach().to("cpu", torch.float64).numpy(), {k: v for k, v in outputs.items() if calls[k] == 1}
