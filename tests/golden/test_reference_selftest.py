"""The numpy oracle checks itself (no smoe binary needed): RoPE in both layouts and the HF q/k
permutation that maps one onto the other, RMSNorm, SwiGLU, top-k MoE gating, causal and windowed
attention, GQA grouping, the GGUF / safetensors writers read back by independent readers, and every
file copy of the tiny models (GGUF, per-expert GGUF, HF single and sharded, Mistral folder, F32/F16/
BF16) holding the same model. See scripts/ref_selftest.py."""
import importlib.util
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
if importlib.util.find_spec("numpy") is None:
    print("SKIP: python3-numpy (the reference's only dependency) is not installed")
    sys.exit(77)
import ref_selftest  # noqa: E402

sys.exit(ref_selftest.main())
