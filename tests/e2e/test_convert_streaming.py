"""`smoe convert` and `smoe quantize` stream: each tensor is made when the GGUF writer reaches it, a
block of rows at a time, and the source's pages are dropped once read, so resident memory stays
near a block's size whatever the model's. A Mixtral-shaped f16 GGUF of about 240 MB is converted
(kept as it is) and quantized to Q8_0; each child's peak resident memory (wait4's ru_maxrss) must
stay under a quarter of the file, which a writer holding the tensors (or a process keeping the
file's pages) cannot do: the writer that held them took 496 and 391 MiB. The outputs must be
right: the kept copy has the source's bytes, the Q8_0 copy dequantizes to the source's values.
And HF folders, whose q and k rows the converter reorders as it reads them (several blocks of
whole heads on a 2048-wide model), convert to exactly the tensors of the same model's GGUF file."""
import os
import subprocess
import sys
import tempfile

from smoe_test import SMOE, Checks, skip, tiny_model

try:
    import numpy as np
except ImportError:
    skip("python3-numpy is not installed")
import make_tiny_model as mtm  # noqa: E402
import smoe_formats as sf  # noqa: E402

c = Checks()


# Spawns its arguments and prints the child's peak resident memory in KiB. A child's ru_maxrss
# counts the memory of the process it was started from too (the pages it shared until exec), so
# the child comes from this small interpreter, not from the test with numpy and its arrays.
MEASURE = """import os, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ,
                     file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
_, status, usage = os.wait4(pid, 0)
print(usage.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(*args):
    """Runs smoe; returns its peak resident memory in bytes."""
    if not SMOE:
        skip("SMOE_BIN is not set (run through ctest)")
    r = subprocess.run([sys.executable, "-S", "-c", MEASURE, SMOE, *map(str, args)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError(f"smoe {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stderr}")
    return int(r.stdout.split()[-1]) * 1024


def same_tensors(what, got_path, want_path):
    _, got = sf.read_gguf_raw(got_path)
    _, want = sf.read_gguf_raw(want_path)
    c.check(sorted(got) == sorted(want), f"{what}: tensor names differ")
    bad = [n for n in want if n in got and (got[n][:2] != want[n][:2] or
                                           not np.array_equal(got[n][2], want[n][2]))]
    c.check(not bad, f"{what}: tensors differ from the GGUF file's: {bad[:5]}")


with tempfile.TemporaryDirectory() as tmp:
    # About 240 MB of f16: 8 experts of 2048×1024 in 2 layers, a 8000-token vocabulary.
    h = dict(mtm.REAL["mixtral"], dim=1024, n_heads=8, n_kv_heads=2, hidden=2048, vocab=8000,
             n_layers=2)
    src = os.path.join(tmp, "model.gguf")
    mtm.write_real_shape(src, h, "f16", seed=1, slice_values=1 << 20)
    size = os.path.getsize(src)
    bound = size // 4
    for verb, typ in (("convert", None), ("quantize", "Q8_0")):
        out = os.path.join(tmp, f"{verb}.gguf")
        peak = run_measured(verb, src, out, "-q", *(["--type", typ] if typ else []))
        print(f"     {verb} {typ or '(kept)'}: peak resident {peak / 2**20:.0f} MiB for a "
              f"{size / 2**20:.0f} MiB model (bound {bound / 2**20:.0f} MiB)")
        c.check(peak < bound, f"{verb}: peak resident memory {peak / 2**20:.0f} MiB, over a quarter "
                f"of the {size / 2**20:.0f} MiB model: the tensors are not streamed")
    same_tensors("convert (kept)", os.path.join(tmp, "convert.gguf"), src)
    _, q8 = sf.read_gguf_raw(os.path.join(tmp, "quantize.gguf"))
    _, f16 = sf.read_gguf_raw(src)
    for name in ("token_embd.weight", "blk.1.ffn_down_exps.weight", "output.weight"):
        t, shape, raw = q8[name]
        want = np.asarray(f16[name][2]).view(np.float16).astype(np.float32).reshape(shape)
        got = sf.dequantize_q8_0(raw, shape) if t == sf.GGML_Q8_0 else None
        err = float(np.sqrt(((got - want) ** 2).mean() / (want ** 2).mean())) if got is not None else 1
        c.check(err < 0.01, f"quantize Q8_0: {name} (type {t}) dequantizes {err:.4f} away from the source")
    del q8, f16

    # HF folders: q and k rows reordered while they are read (dim 2048: 16 MB of f32 rows, blocks of
    # whole heads), and a Mixtral; the Mistral folder for good measure.
    for name, args in (("wide", ["--kind", "mistral", "--dim", "2048", "--n-heads", "16", "--n-kv-heads", "4",
                                 "--hidden", "64", "--vocab", "64", "--layers", "1"]),
                       ("mixtral", ["--kind", "mixtral", "--shards", "2"])):
        d = os.path.join(tmp, name)
        tiny_model(d, *args)
        for folder in ("hf", "mistral"):
            out = os.path.join(tmp, f"{name}-{folder}.gguf")
            run_measured("convert", os.path.join(d, folder), out, "-q")
            same_tensors(f"{name} {folder} folder converted", out, os.path.join(d, "model.gguf"))

c.done()
