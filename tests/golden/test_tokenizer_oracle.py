"""smoe's tokenizer against the reference SentencePiece library on the real Mistral / Mixtral
tokenizers: a 2,500-line multilingual corpus, random bytes (invalid UTF-8 included) and random id
sequences must give identical ids / text; decode(encode(x)) must equal x wherever the reference
round-trips; and the vocabulary carried in GGUF metadata (written by an independent Python writer
and by smoe's own writer) must encode exactly as the .model file does."""
import json
import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from smoe_test import SHARED, Checks, skip, smoe, tiny_model  # noqa: E402
import make_tokenizer_corpus  # noqa: E402
import smoe_formats  # noqa: E402

try:
    import sentencepiece
except ImportError:
    skip("python3-sentencepiece (the reference tokenizer) is not installed")


def jsonl_line(x):
    # Text that is not valid UTF-8 travels as an array of byte values.
    return json.dumps(list(x) if isinstance(x, bytes) else x)


def smoe_encode_all(model, lines):
    r = smoe("tokenize", "-m", model, "--jsonl", "--no-bos", stdin="".join(jsonl_line(x) + "\n" for x in lines))
    out = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(out) == len(lines), (len(out), len(lines))
    return out


def smoe_decode_all(model, id_lists):
    r = smoe("detokenize", "-m", model, "--jsonl", stdin="".join(json.dumps(i) + "\n" for i in id_lists))
    # split("\n"), not splitlines(): decoded text may hold U+2028, U+0085 and other line breaks.
    out = [json.loads(x) for x in r.stdout.split("\n")[:-1]]
    assert len(out) == len(id_lists), (len(out), len(id_lists))
    return out


def random_bytes(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        b = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 40)))
        # Now and then valid text with bytes cut out of it (half characters).
        if rng.random() < 0.3:
            t = rng.choice(make_tokenizer_corpus.SEEDS["zh"] + make_tokenizer_corpus.SEEDS["emoji"]).encode()
            k = rng.randint(0, len(t) - 1)
            b = t[:k] + t[k + 1:]
        out.append(b)
    return out


def compare(c, name, what, mine, ref, inputs):
    same = sum(a == b for a, b in zip(mine, ref))
    for a, b, x in zip(mine, ref, inputs):
        if a != b:
            print(f"{name}: {what} differs on {x!r}:\n  smoe {a}\n  ref  {b}")
            break
    print(f"{name}: {what}: {same}/{len(ref)} identical")
    c.check(same == len(ref), f"{name}: {what}: {len(ref) - same} differ")


def python_gguf(sp, path, add_bos=None):
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
    if add_bos is not None:
        w.boolean("tokenizer.ggml.add_bos_token", add_bos)
    w.write(path)


def hf_tokenizer_json(sp, path):
    """The vocabulary as a Hugging Face tokenizer.json lays it out: a BPE vocab and, for every piece,
    each split into two pieces of the vocab as a merge, ordered by the piece's score."""
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    merges = []
    for piece, i in vocab.items():
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i):
            continue
        local = [(piece[:k], piece[k:]) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges += [(a, b, sp.get_score(i)) for a, b in local]
    merges.sort(key=lambda m: m[2], reverse=True)
    added = [{"id": i, "content": sp.id_to_piece(i), "special": True} for i in range(n)
             if sp.is_control(i) or sp.is_unknown(i)]
    with open(path, "w") as f:
        json.dump({"added_tokens": added, "model": {"type": "BPE", "byte_fallback": True, "unk_token": "<unk>",
                   "vocab": vocab, "merges": [a + " " + b for a, b, _ in merges]}}, f, ensure_ascii=False)


def smoe_written_gguf(model, vocab, d):
    """A one-layer model converted by smoe with the tokenizer embedded (smoe's GGUF writer)."""
    tiny = os.path.join(d, "tiny")
    tiny_model(tiny, "--kind", "mistral", "--vocab", vocab, "--layers", "1", quiet=True)
    out = os.path.join(d, "converted.gguf")
    smoe("convert", os.path.join(tiny, "hf"), out, "--tokenizer", model, "-q")
    return out


c = Checks()
corpus = [x for x in make_tokenizer_corpus.build(2500, 20261122) if x]
print(f"corpus: {len(corpus)} lines")
c.check(len(corpus) >= 2000, f"corpus has only {len(corpus)} lines")
for name in ("mistral-tokenizer.v1.model", "mistral-tokenizer.v3.model"):
    path = os.path.join(SHARED, name)
    if not os.path.exists(path):
        skip(f"{name} is not in {SHARED} (the real Mistral tokenizer, shared test data)")
    sp = sentencepiece.SentencePieceProcessor(model_file=path)
    ref = [sp.encode(x) for x in corpus]
    compare(c, name, "corpus lines encoded", smoe_encode_all(path, corpus), ref, corpus)

    # Decoding: every corpus line's ids, as the reference decodes them; and the round trip.
    back = smoe_decode_all(path, ref)
    compare(c, name, "corpus lines decoded", back, [sp.decode(i) for i in ref], corpus)
    rt = [x for x, i in zip(corpus, ref) if sp.decode(i) == x]
    rt_ok = sum(b == x for x, i, b in zip(corpus, ref, back) if sp.decode(i) == x)
    print(f"{name}: {rt_ok}/{len(rt)} lines round-trip as the reference does ({len(corpus) - len(rt)} do not round-trip in the reference either)")
    c.check(rt_ok == len(rt) and len(rt) > len(corpus) // 2, f"{name}: round trip differs")

    # Random bytes, invalid UTF-8 included, given to both as raw bytes.
    fuzz = random_bytes(1000, 7)
    compare(c, name, "random-byte strings encoded", smoe_encode_all(path, fuzz), [sp.encode(x) for x in fuzz], fuzz)

    # Random id sequences (bytes, controls, unknown, text pieces), decoded.
    rng = random.Random(11)
    n = sp.get_piece_size()
    pools = [range(0, 3), range(3, 300), range(n - 2000, n), range(0, n)]
    seqs = [[rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 12))] for _ in range(1000)]
    compare(c, name, "random id sequences decoded", smoe_decode_all(path, seqs), [sp.decode(s) for s in seqs], seqs)

    with tempfile.TemporaryDirectory() as d:
        gguf = os.path.join(d, "tok.gguf")
        python_gguf(sp, gguf)
        compare(c, name + " via GGUF metadata (Python writer)", "corpus lines encoded",
                smoe_encode_all(gguf, corpus), ref, corpus)
        converted = smoe_written_gguf(path, n, d)
        compare(c, name + " via GGUF metadata (smoe convert)", "corpus lines encoded",
                smoe_encode_all(converted, corpus), ref, corpus)
        hf = os.path.join(d, "tokenizer.json")
        hf_tokenizer_json(sp, hf)
        compare(c, name + " via tokenizer.json (scores from merge ranks)", "corpus lines encoded",
                smoe_encode_all(hf, corpus), ref, corpus)
        # tokenizer.ggml.add_bos_token is honoured (here: false, so no BOS by default).
        python_gguf(sp, gguf, add_bos=False)
        ids = smoe("tokenize", "-m", gguf, "--ids-only", "-p", "Hello").stdout.split()
        c.check(ids == [str(i) for i in sp.encode("Hello")], f"add_bos_token=false still adds BOS: {ids}")

# llama2.c's tokenizer.bin (no reference library: the ids llama2.c's run.c prints).
tok512 = os.path.join(SHARED, "tok512.bin")
if os.path.exists(tok512):
    ids = smoe("tokenize", "-m", tok512, "--ids-only", "-p", "Once upon a time").stdout.split()
    c.check(ids == ["1", "403", "407", "261", "378"], f"tok512.bin: 'Once upon a time' gave {ids}")

c.done()
