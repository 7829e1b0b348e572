"""The demo model's synthetic tasks: problems written as text whose answers can be checked.

Two kinds of problem, one per line, prompt and answer separated by '=':

  addition  "A+B=C"            A, B in [0, 999] (each has 1-3 digits, no leading zeros), C = A + B
            e.g. "417+86=503"
  sorting   "sort D D ... D=S"  2 to 5 single digits (repeats allowed), S = the same digits in
            ascending order, separated by single spaces
            e.g. "sort 5 2 9=2 5 9"

The prompt is everything up to and including '='; the answer is what follows it. The model is
trained on "<s> prompt answer </s>" and answers by greedy decoding after the prompt until it emits
</s> (EOS, id 2) or a newline piece (see README.md).
"""

import random

MAX_ADD_DIGITS = 3
MIN_SORT_LEN = 2
MAX_SORT_LEN = 5


def _number(rng: random.Random) -> int:
    n_digits = rng.randint(1, MAX_ADD_DIGITS)
    lo = 0 if n_digits == 1 else 10 ** (n_digits - 1)
    return rng.randint(lo, 10**n_digits - 1)


def addition(rng: random.Random) -> tuple[str, str]:
    a, b = _number(rng), _number(rng)
    return f"{a}+{b}=", str(a + b)


def sorting(rng: random.Random) -> tuple[str, str]:
    digits = [rng.randint(0, 9) for _ in range(rng.randint(MIN_SORT_LEN, MAX_SORT_LEN))]
    return "sort " + " ".join(map(str, digits)) + "=", " ".join(map(str, sorted(digits)))


def problem(rng: random.Random, p_add: float = 0.5) -> tuple[str, str]:
    """One problem: addition with probability p_add, else sorting. Returns (prompt, answer)."""
    return addition(rng) if rng.random() < p_add else sorting(rng)


def kind(prompt: str) -> str:
    return "sort" if prompt.startswith("sort") else "add"


def heldout_set(seed: int, n_per_kind: int) -> list[tuple[str, str]]:
    """n_per_kind distinct addition and n_per_kind distinct sorting problems (sorted order kept
    stable: additions first, then sorts, each in generation order)."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    for gen in (addition, sorting):
        seen: set[str] = set()
        while len(seen) < n_per_kind:
            p, a = gen(rng)
            if p not in seen:
                seen.add(p)
                out.append((p, a))
    return out
