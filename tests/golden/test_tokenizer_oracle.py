"""smoe's tokenizer against the reference SentencePiece library on the real Mistral / Mixtral
tokenizers: a 2,500-line multilingual corpus and random bytes must give identical ids, and
decode(encode(x)) must equal x wherever the reference round-trips."""
import json
import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from smoe_test import SHARED, Checks, skip, smoe  # noqa: E402
import make_tokenizer_corpus  # noqa: E402
import smoe_formats  # noqa: E402

try:
    import sentencepiece
except ImportError:
    skip("python3-sentencepiece (the reference tokenizer) is not installed")


def smoe_encode_all(model, lines):
    inp = "".join(json.dumps(x) + "\n" for x in lines)
    r = smoe("tokenize", "-m", model, "--jsonl", "--no-bos", stdin=inp)
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(out) == len(lines), (len(out), len(lines))
    return out


def smoe_decode(model, ids):
    r = smoe("detokenize", "-m", model, "--ids", " ".join(map(str, ids)))
    return r.stdout[:-1]  # the command ends the text with one newline


def random_texts(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        b = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 40)))
        out.append(b.decode("utf-8", errors="surrogateescape"))
    return out


c = Checks()
corpus = [x for x in make_tokenizer_corpus.build(2500, 20261122) if x]
for name in ("mistral-tokenizer.v1.model", "mistral-tokenizer.v3.model"):
    path = os.path.join(SHARED, name)
    if not os.path.exists(path):
        skip(f"{name} is not in {SHARED} (the real Mistral tokenizer, shared test data)")
    sp = sentencepiece.SentencePieceProcessor(model_file=path)
    mine = smoe_encode_all(path, corpus)
    same = sum(a == sp.encode(x) for a, x in zip(mine, corpus))
    for a, x in zip(mine, corpus):
        if a != sp.encode(x):
            print(f"{name}: differs on {x!r}:\n  smoe {a}\n  ref  {sp.encode(x)}")
            break
    print(f"{name}: {same}/{len(corpus)} corpus lines encode identically")
    c.check(same == len(corpus), f"{name}: {len(corpus) - same} lines differ")

    # Round trip where the reference round-trips (a sample: one process per decode).
    rng = random.Random(1)
    sample = rng.sample(corpus, 60)
    rt_ok = rt_n = 0
    for x in sample:
        ids = sp.encode(x)
        if sp.decode(ids) != x:
            continue
        rt_n += 1
        rt_ok += smoe_decode(path, ids) == x
    print(f"{name}: {rt_ok}/{rt_n} sampled lines round-trip as the reference does")
    c.check(rt_ok == rt_n, f"{name}: round trip differs")

    # Random bytes, invalid UTF-8 included (Python hands both sides the same str).
    fuzz = [t.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace") for t in random_texts(500, 7)]
    mine = smoe_encode_all(path, fuzz)
    same = sum(a == sp.encode(x) for a, x in zip(mine, fuzz))
    print(f"{name}: {same}/{len(fuzz)} random-byte strings encode identically")
    c.check(same == len(fuzz), f"{name}: random strings differ")

    # The same vocabulary carried in GGUF metadata (written here by an independent writer).
    with tempfile.TemporaryDirectory() as d:
        gguf = os.path.join(d, "tok.gguf")
        w = smoe_formats.GGUFWriter()
        w.string("general.architecture", "llama")
        w.string("tokenizer.ggml.model", "llama")
        n = sp.get_piece_size()
        w.strings("tokenizer.ggml.tokens", [sp.id_to_piece(i) for i in range(n)])
        w.floats("tokenizer.ggml.scores", [sp.get_score(i) for i in range(n)])
        kinds = []
        for i in range(n):
            kinds.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
                         else 5 if sp.is_unused(i) else 1)
        w.ints("tokenizer.ggml.token_type", kinds)
        w.u32("tokenizer.ggml.bos_token_id", sp.bos_id())
        w.u32("tokenizer.ggml.eos_token_id", sp.eos_id())
        w.u32("tokenizer.ggml.unknown_token_id", sp.unk_id())
        w.write(gguf)
        via_gguf = smoe_encode_all(gguf, corpus)
        same = sum(a == sp.encode(x) for a, x in zip(via_gguf, corpus))
        print(f"{name} via GGUF metadata: {same}/{len(corpus)} lines identical")
        c.check(same == len(corpus), f"{name}: GGUF vocabulary differs")
        # tokenizer.ggml.add_bos_token is honoured (here: false, so no BOS by default).
        w.boolean("tokenizer.ggml.add_bos_token", False)
        w.write(gguf)
        ids = smoe("tokenize", "-m", gguf, "--ids-only", "-p", "Hello").stdout.split()
        c.check(ids == [str(i) for i in sp.encode("Hello")], f"add_bos_token=false still adds BOS: {ids}")

c.done()
