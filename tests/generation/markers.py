"""Skip markers for what this host may lack: vllm and CUDA (skipped, never faked)."""

import importlib.util

import pytest

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


require_vllm = pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (GPU hosts only)")
require_cuda = pytest.mark.skipif(not _has_cuda(), reason="no CUDA device")
