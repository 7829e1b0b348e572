#!/usr/bin/python3
"""Reference logits of the demo model for one token sequence, computed from the exported files
(params.json + consolidated.safetensors + tokenizer.model), to compare an engine's logits with.

  /usr/bin/python3 scripts/demo/torch_logits.py --prompt "417+86="             # [BOS] + encode
  /usr/bin/python3 scripts/demo/torch_logits.py --ids 1,263,272,265 --out l.npy
  /usr/bin/python3 scripts/demo/torch_logits.py --prompt "sort 3 1=" --impl numpy --json

Logits are for every position 0..T-1 (positions start at 0, no KV cache); --out saves them as a
float32 .npy of shape (T, vocab) (or .json: {"ids": [...], "logits": [[...], ...]}). The summary
printed per position: the input id and piece, the argmax id and piece, and its logit.
--impl numpy uses np_model.py (no PyTorch needed, float64 arithmetic).
"""

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
DEFAULT_MODEL = os.path.join(HERE, "..", "..", "models", "demo")


def compute(model_dir: str, ids: list[int], impl: str) -> np.ndarray:
    if impl == "numpy":
        import np_model
        return np_model.NumpyModel(model_dir).logits(ids).astype(np.float32)
    import torch
    import infer
    torch.set_num_threads(1)
    model, _ = infer.load_exported(model_dir)
    with torch.no_grad():
        logits, _ = model(torch.tensor([ids], dtype=torch.long))
    return logits[0].numpy()


def main() -> int:
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    a.add_argument("-m", "--model", default=DEFAULT_MODEL, help="exported model folder")
    g = a.add_mutually_exclusive_group(required=True)
    g.add_argument("--ids", help="comma-separated token ids (used as given, no BOS added)")
    g.add_argument("-p", "--prompt", help="text, encoded as [BOS] + SentencePiece ids")
    a.add_argument("--impl", choices=["torch", "numpy"], default="torch")
    a.add_argument("--out", help="save logits: .npy (float32, (T, vocab)) or .json")
    a.add_argument("--json", action="store_true", help="print {ids, logits} JSON to stdout")
    args = a.parse_args()

    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.model, "tokenizer.model"))
    if args.ids is not None:
        ids = [int(t) for t in args.ids.split(",") if t.strip()]
    else:
        ids = [1] + sp.encode(args.prompt)
    bad = [t for t in ids if not 0 <= t < sp.get_piece_size()]
    if not ids or bad:
        print(f"error: ids must be non-empty and in [0, {sp.get_piece_size()}): {bad}",
              file=sys.stderr)
        return 2
    logits = compute(args.model, ids, args.impl)
    if args.out:
        if args.out.endswith(".json"):
            with open(args.out, "w") as f:
                json.dump({"ids": ids, "logits": logits.tolist()}, f)
        else:
            np.save(args.out, logits)
    if args.json:
        print(json.dumps({"ids": ids, "logits": logits.tolist()}))
        return 0
    for pos, (t, row) in enumerate(zip(ids, logits)):
        best = int(row.argmax())
        print(f"{pos:3d} in {t:4d} {sp.id_to_piece(t)!r:10} -> argmax {best:4d} "
              f"{sp.id_to_piece(best)!r:10} logit {row[best]:+.6f}  first3 {row[:3].tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
