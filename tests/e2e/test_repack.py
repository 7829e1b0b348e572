"""Weights repacked at load give the logits of the file's layout. Small Mixtral- and Mistral-style
models whose rows are whole 512-column steps (dim 512, FFN 1024 wide) are quantized to Q4_0 and read
into memory (--no-mmap), where smoe rearranges its matrices into the layout this CPU's kernels
read fastest (Q4_0 interleaved by eight rows on AVX2 without AVX-512). Its logits, token by token
(the small-batch kernels with 1 token), in chunks of 3 (with 3 tokens) and as one pre-fill (the
strip GEMM), must equal those of the same file with --no-repack: bit for bit in batches (on a
dense model, where every product has the batch's tokens), within the 8-bit activations' rounding
one token at a time; the scalar reference must give the same logits, bit for bit, from either
layout; and `bench --json` reports how many bytes were repacked (none where the CPU's kernels read the file's
layout best, or with --no-repack)."""
import json
import os
import tempfile

import smoe_test
from smoe_test import Checks, skip, smoe, tiny_model

try:
    import numpy as np
except ImportError:
    skip("python3-numpy is not installed")

c = Checks()


def logits(model, ids, *extra):
    return smoe_test.logits(model, ids, "--no-mmap", *extra)


def repacked_bytes(model, *extra):
    out = smoe("bench", "-m", model, "--no-mmap", "-p", "8", "-n", "0", "-r", "1", "--json", *extra).stdout
    return json.loads(out)[0]["repacked_bytes"]


def avx2_only():
    flags = open("/proc/cpuinfo").read()
    return " avx2 " in flags and " avx512f " not in flags


def model(tmp, kind):
    d = os.path.join(tmp, kind)
    tiny_model(d, "--kind", kind, "--dim", "512", "--hidden", "1024", "--n-heads", "8", "--n-kv-heads", "4",
               "--layers", "2", "--vocab", "256", "--seed", "3")
    q4 = os.path.join(tmp, kind + "-q4_0.gguf")
    smoe("quantize", "-q", "--type", "Q4_0", os.path.join(d, "model.gguf"), q4)
    return q4


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


with tempfile.TemporaryDirectory() as tmp:
    moe, dense = model(tmp, "mixtral"), model(tmp, "mistral")
    ids = [int(x) for x in np.random.default_rng(1).integers(1, 256, 24)]

    packed = repacked_bytes(moe)
    c.check(repacked_bytes(moe, "--no-repack") == 0, "--no-repack still repacked bytes")
    if avx2_only():
        c.check(packed > 0, "an AVX2-only CPU repacked no Q4_0 bytes")
    print(f"repacked at load: {packed} bytes")

    # Batches of 2 or more tokens read the interleaved rows with the same arithmetic as the file's
    # rows (the eight-row tiles, the strip repack): the same logits, bit for bit, on a dense model
    # (a MoE model's experts may see one token, below).
    for chunk in ("3", "0"):
        got, want = logits(dense, ids, "--chunk", chunk), logits(dense, ids, "--chunk", chunk, "--no-repack")
        c.check(np.array_equal(got, want), f"chunk {chunk}: repacked logits differ by {rel(got, want):.3g}")
    # One token at a time the two layouts sum in another order; a rounding of the 8-bit
    # activations then may go the other way, so the logits differ by the activations' rounding,
    # no more than either differs from the reference kernels (exact arithmetic).
    for m in (dense, moe):
        ref = logits(m, ids, "--chunk", "1", "--reference")
        got, want = logits(m, ids, "--chunk", "1"), logits(m, ids, "--chunk", "1", "--no-repack")
        bound = max(rel(got, ref), rel(want, ref))
        c.check(rel(got, want) <= bound and bound < 0.05,
                f"one token at a time: {rel(got, want):.3g} apart, {bound:.3g} from the reference")
        print(f"one token at a time: {rel(got, want):.2e} apart, {rel(got, ref):.2e} and {rel(want, ref):.2e} from the reference")
        # The reference reads either layout to the same floats.
        c.check(np.array_equal(ref, logits(m, ids, "--chunk", "1", "--reference", "--no-repack")),
                "the reference kernels differ between the two layouts")

c.done()
