"""The committed demo models (models/demo, float32, and models/demo256, float16: the same tasks and
tokenizer with rows wide enough for k-quant blocks) are well formed and their numpy oracle agrees
with the PyTorch answers recorded at export time; the helper scripts reject bad input.

Needs numpy + sentencepiece (Debian's python3); the PyTorch cross-check runs only when torch is
importable. Exits 77 (skip) only when numpy or sentencepiece is missing.
"""

import json
import os
import struct
import subprocess
import sys
import tempfile

SRC = os.environ.get("SMOE_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
DEMO = os.path.join(SRC, "models", "demo")
SCRIPTS = os.path.join(SRC, "scripts", "demo")
sys.path.insert(0, SCRIPTS)

try:
    import numpy as np
    import sentencepiece as spm
except ImportError as e:
    print(f"skip: needs numpy and sentencepiece (Debian's /usr/bin/python3): {e}")
    sys.exit(77)

DEMOS = {DEMO: np.float32, os.path.join(SRC, "models", "demo256"): np.float16}

import np_model  # noqa: E402
import safetensors_io  # noqa: E402

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


def expected_shapes(p):
    d, hd, hid, V = p["dim"], p["head_dim"], p["hidden_dim"], p["vocab_size"]
    s = {"tok_embeddings.weight": [V, d], "norm.weight": [d], "output.weight": [V, d]}
    for i in range(p["n_layers"]):
        L = f"layers.{i}."
        s[L + "attention_norm.weight"] = [d]
        s[L + "ffn_norm.weight"] = [d]
        s[L + "attention.wq.weight"] = [p["n_heads"] * hd, d]
        s[L + "attention.wk.weight"] = [p["n_kv_heads"] * hd, d]
        s[L + "attention.wv.weight"] = [p["n_kv_heads"] * hd, d]
        s[L + "attention.wo.weight"] = [d, p["n_heads"] * hd]
        s[L + "feed_forward.gate.weight"] = [p["moe"]["num_experts"], d]
        for e in range(p["moe"]["num_experts"]):
            E = f"{L}feed_forward.experts.{e}."
            s[E + "w1.weight"] = [hid, d]
            s[E + "w3.weight"] = [hid, d]
            s[E + "w2.weight"] = [d, hid]
    return s


def test_files(demo, dtype):
    with open(os.path.join(demo, "params.json")) as f:
        p = json.load(f)
    check(p["moe"] == {"num_experts": 8, "num_experts_per_tok": 2}, f"moe {p['moe']}")
    check(p["n_heads"] % p["n_kv_heads"] == 0, "n_heads divisible by n_kv_heads")
    tensors, _ = safetensors_io.read(os.path.join(demo, "consolidated.safetensors"))
    shapes = {k: list(v.shape) for k, v in tensors.items()}
    check(shapes == expected_shapes(p), "tensor names / shapes match params.json")
    check(all(v.dtype == dtype for v in tensors.values()), f"{demo}: all tensors {dtype.__name__}")
    check(all(np.isfinite(v).all() for v in tensors.values()), "all weights finite")
    sp = spm.SentencePieceProcessor(model_file=os.path.join(demo, "tokenizer.model"))
    check(sp.get_piece_size() == p["vocab_size"], "tokenizer size == vocab_size")
    check((sp.bos_id(), sp.eos_id(), sp.unk_id()) == (1, 2, 0), "bos 1, eos 2, unk 0")
    check(sp.piece_to_id("<0x0A>") == 13, "newline byte piece is id 13")
    total = sum(os.path.getsize(os.path.join(demo, n)) for n in os.listdir(demo))
    check(total < 8 << 20, f"models/demo is small ({total} bytes)")
    with open(os.path.join(demo, "demo.json")) as f:
        info = json.load(f)
    check(info["heldout_accuracy"]["all"] >= 0.95, f"held-out accuracy {info['heldout_accuracy']}")
    return p, sp, info


def test_numpy_matches_recorded_torch(demo, sp, info):
    with open(os.path.join(demo, "heldout.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    check(len(rows) >= 200, f"{len(rows)} held-out problems")
    recorded = sum(r["torch"] == r["answer"] for r in rows) / len(rows)
    check(abs(recorded - info["heldout_accuracy"]["all"]) < 1e-12, "heldout.jsonl matches demo.json")
    m = np_model.NumpyModel(demo)
    stops = {2, 13}
    subset = rows[:30] + rows[-30:]  # additions come first, sorts last
    same = sum(sp.decode(m.greedy([1] + sp.encode(r["prompt"]), stops, 12)) == r["torch"]
               for r in subset)
    check(same == len(subset), f"numpy greedy == recorded PyTorch answer on {same}/{len(subset)}")
    return m


def test_torch_logits(demo, m):
    try:
        import torch  # noqa: F401
    except ImportError:
        print("note: torch not installed; PyTorch-vs-numpy logits check not run")
        return
    import infer
    model, sp = infer.load_exported(demo)
    for prompt in ["417+86=503", "sort 5 2 9 1 3=1 2 3 5 9"]:
        ids = [1] + sp.encode(prompt)
        with torch.no_grad():
            t = model(torch.tensor([ids]))[0][0].double().numpy()
        diff = np.abs(t - m.logits(ids)).max()
        check(diff < 1e-4, f"torch vs numpy logits on {prompt!r}: max diff {diff}")


def test_safetensors_errors():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.safetensors")
        safetensors_io.write(path, {"a": np.arange(6, dtype=np.float32).reshape(2, 3)})
        back, _ = safetensors_io.read(path)
        check(back["a"].tolist() == [[0, 1, 2], [3, 4, 5]], "safetensors round trip")
        data = open(path, "rb").read()
        for name, bad in [("short", data[:4]), ("truncated data", data[:-4]),
                          ("header too long", struct.pack("<Q", 1 << 40) + data[8:])]:
            open(path, "wb").write(bad)
            try:
                safetensors_io.read(path)
                check(False, f"safetensors {name}: no error")
            except ValueError as e:
                check(path in str(e), f"safetensors {name}: error names the file: {e}")
        try:
            safetensors_io.write(path, {"b": np.zeros(2, dtype=np.uint16)})
            check(False, "safetensors unsupported dtype: no error")
        except ValueError as e:
            check("'b'" in str(e), f"unsupported dtype error names the tensor: {e}")


def run_check(*args, env=None):
    cmd = [sys.executable, os.path.join(SCRIPTS, "check_accuracy.py"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def test_check_accuracy_cli():
    r = run_check("--engine", "numpy", "--limit", "20", "--min-accuracy", "0.5")
    check(r.returncode == 0, f"check_accuracy numpy: rc {r.returncode} {r.stderr[-300:]}")
    r = run_check("--engine", "numpy", "--limit", "5", "--min-accuracy", "1.01")
    check(r.returncode == 1, f"check_accuracy impossible minimum: rc {r.returncode}")
    env = dict(os.environ, SMOE_BIN="/nonexistent/smoe")
    r = run_check("--engine", "smoe", "--limit", "2", env=env)
    check(r.returncode == 2 and "SMOE_BIN" in r.stderr, f"missing smoe binary: {r.stderr}")
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as f:
        f.write('{"question": 1}\n')
        f.flush()
        r = run_check("--engine", "numpy", "--heldout", f.name)
        check(r.returncode == 2 and f.name in r.stderr, f"bad held-out file: {r.stderr}")
    sys.path.insert(0, SCRIPTS)
    import check_accuracy
    check(check_accuracy.clean_answer("1+2=", "1+2=3\n4+4=8") == "3", "echoed prompt removed")
    check(check_accuracy.clean_answer("1+2=", "3  \n") == "3", "trailing space/newline cut")


def main():
    for demo, dtype in DEMOS.items():
        _, sp, info = test_files(demo, dtype)
        m = test_numpy_matches_recorded_torch(demo, sp, info)
        test_torch_logits(demo, m)
    test_safetensors_errors()
    test_check_accuracy_cli()
    print("FAILED" if failures else "ok", len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
