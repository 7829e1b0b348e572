#!/usr/bin/env python3
"""Assembles the tokenizer test corpus: thousands of lines across languages, scripts, code,
digits, whitespace and control characters. Deterministic (seeded): the same corpus every run.

Usage: make_tokenizer_corpus.py [--lines N] [--seed S] > corpus.jsonl   (one JSON string per line)
"""
import argparse
import json
import random

SEEDS = {
    "en": ["The quick brown fox jumps over the lazy dog.", "Mixture-of-experts models route each token to two of eight experts.",
           "She said: \"It's not what you think!\"", "Prices rose 3.5% in Q3 (vs. 2.1% in Q2).", "e-mail me at someone@example.org, OK?"],
    "fr": ["L'été dernier, nous sommes allés à la mer.", "Où est la bibliothèque ? Je ne la trouve pas.", "Ça coûte 12,50 € — c'est cher !"],
    "de": ["Größenwahnsinnige Straßenbahnfahrer übergießen Äpfel.", "Donaudampfschifffahrtsgesellschaftskapitän", "Ich weiß nicht, ob ich's schaffe."],
    "es": ["¿Dónde está el baño? ¡Necesito ayuda!", "El niño comió piña y jalapeños.", "Año nuevo, vida nueva."],
    "it": ["Perché la città è così bella d'estate?", "Più tardi andremo al caffè.", "L'unità è forza."],
    "zh": ["混合专家模型在每一层为每个词元选择两个专家。", "我爱北京天安门。", "今天天气很好，我们去公园散步吧！"],
    "ja": ["こんにちは、世界！", "東京は日本の首都です。", "カタカナとひらがなと漢字を混ぜた文章。"],
    "ko": ["안녕하세요, 만나서 반갑습니다.", "한국어 텍스트 토큰화 테스트입니다.", "서울은 대한민국의 수도입니다."],
    "ru": ["Съешь же ещё этих мягких французских булок, да выпей чаю.", "Москва — столица России.", "Привет, мир!"],
    "ar": ["مرحبا بالعالم", "اللغة العربية جميلة جدا.", "القاهرة هي عاصمة مصر."],
    "hi": ["नमस्ते दुनिया", "हिन्दी भारत की एक भाषा है।", "मुझे चाय पसंद है।"],
    "emoji": ["I ❤️ smoe 🚀🔥", "👨‍👩‍👧‍👦 family", "🏳️‍🌈 flag and 👍🏽 thumbs", "🧑🏿‍💻 at work 🤖", "😀😃😄😁😆😅🤣😂"],
    "code": ["def f(x):\n\treturn x * 2\n", "int main() {\n    printf(\"%d\\n\", 42);\n}", "\t\t\tif (a && b) {\n\t\t\t\t\tc++;\n\t\t\t}",
             "for i in range(10):\n        if i % 2:\n                print(i)", "SELECT * FROM t WHERE id IN (1, 2, 3);", "x = {'a': [1, 2], \"b\": None}  # comment"],
    "digits": ["12345", "3.14159265358979323846", "000000000000", "1,234,567,890", "2026-11-22T09:01:00Z", "0x7fffffff"],
    "space": ["  leading spaces", "trailing spaces   ", "   both   ", "a  b   c    d", "\n\nnewlines\n\n", " \t mixed \t whitespace \n", " ", "  ", "\n", "\t"],
    "control": ["bell\x07here", "nul\x00byte", "esc\x1b[31mred\x1b[0m", "form\x0cfeed", "del\x7fchar", "zero\u200bwidth", "bidi\u202eoverride"],
    "long": ["Pneumonoultramicroscopicsilicovolcanoconiosis", "a" * 300, "ab" * 150, "supercalifragilisticexpialidocious" * 3],
}


def variants(rng, s):
    """A few deterministic variations of a seed line."""
    out = [s, " " + s, s + " ", "  " + s + "  ", s.upper(), s.lower(), s + "\n" + s]
    words = s.split(" ")
    if len(words) > 2:
        w = words[:]
        rng.shuffle(w)
        out.append(" ".join(w))
        out.append(" ".join(words[: len(words) // 2]))
    out.append(s.replace(" ", "  "))
    out.append(s + " " + str(rng.randint(0, 10**rng.randint(1, 18))))
    return out


def build(n_lines, seed):
    rng = random.Random(seed)
    lines = []
    for cat in sorted(SEEDS):
        for s in SEEDS[cat]:
            lines.extend(variants(rng, s))
    all_seeds = [s for cat in sorted(SEEDS) for s in SEEDS[cat]]
    while len(lines) < n_lines:
        k = rng.randint(1, 4)
        parts = [rng.choice(all_seeds) for _ in range(k)]
        sep = rng.choice([" ", "\n", "  ", "\t", "", " \n "])
        line = sep.join(parts)
        if rng.random() < 0.2:
            line = " " * rng.randint(1, 5) + line + " " * rng.randint(0, 5)
        if rng.random() < 0.1:
            line += "".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(rng.randint(1, 20)))
        if rng.random() < 0.05:
            line = str(rng.randint(0, 10**30))
        lines.append(line)
    return lines[: max(n_lines, len(lines))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=2500)
    ap.add_argument("--seed", type=int, default=20261122)
    a = ap.parse_args()
    for line in build(a.lines, a.seed):
        print(json.dumps(line))


if __name__ == "__main__":
    main()
