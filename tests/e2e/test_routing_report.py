"""`smoe routing` on the demo model (trained, so its routing is learned) with two domains,
addition and sorting problems: the page it writes renders in headless Chromium (a screenshot is
saved to build/test-output/routing_report.png) without fetching anything; every bar of Figure 7
and every cell of Table 5 shows the value the JSON's raw counts give, and the bars are drawn to
scale; Figure 8 colours the tokens asked for; the two domains route differently; a text longer
than one chunk is measured whole; an empty text is a usage error."""
import json
import os
import subprocess
import tempfile

from serve_util import node_or_skip
from smoe_test import SOURCE, Checks, skip, smoe

model = os.path.join(SOURCE, "models", "demo.gguf")
heldout = os.path.join(SOURCE, "models", "demo", "heldout.jsonl")
for p in (model, heldout):
    if not os.path.exists(p):
        skip(f"{p} is missing from the checkout")
node = node_or_skip()
c = Checks()
out_dir = os.path.join(os.path.dirname(os.environ.get("SMOE_BIN", os.path.join(SOURCE, "build", "smoe"))),
                       "test-output")
os.makedirs(out_dir, exist_ok=True)

with tempfile.TemporaryDirectory() as tmp:
    problems = [json.loads(x) for x in open(heldout) if x.strip()]
    files = {}
    for kind, test in (("addition", lambda p: "+" in p["prompt"]), ("sorting", lambda p: p["prompt"].startswith("sort"))):
        files[kind] = os.path.join(tmp, kind + ".txt")
        with open(files[kind], "w") as f:
            f.write("".join(p["prompt"] + p["answer"] + "\n" for p in problems if test(p)))
    page = os.path.join(tmp, "report.html")
    args = ["routing", "-m", model, "-f", f"addition={files['addition']}", "-f", f"sorting={files['sorting']}",
            "-c", "256", "--tokens", "120", "--html", page]
    data = json.loads(smoe(*args, "--json").stdout)
    c.check(os.path.getsize(page) > 1000, "no page written")
    html = open(page, encoding="utf-8").read()
    c.check("http://" not in html and "https://" not in html, "the page refers to the network")

    n_exp, n_layers = data["n_experts"], data["n_layers"]
    doms = {d["name"]: d for d in data["domains"]}
    c.check(set(doms) == {"addition", "sorting"}, f"domains {list(doms)}")
    for d in doms.values():
        c.check(d["n_tokens"] > 256, f"{d['name']}: {d['n_tokens']} tokens, expected more than one chunk")
        for lay in d["layers"]:
            c.check(sum(lay["first_choice"]) == d["n_tokens"], "first choices do not cover every token")
            c.check(sum(lay["any_choice"]) == d["n_tokens"] * data["top_k"], "choices do not add up")
    # Routing is learned: the two domains' first choices differ somewhere by 10 points or more.
    gap = max(abs(a / doms["addition"]["n_tokens"] - b / doms["sorting"]["n_tokens"])
              for la, lb in zip(doms["addition"]["layers"], doms["sorting"]["layers"])
              for a, b in zip(la["first_choice"], lb["first_choice"]))
    c.check(gap >= 0.10, f"the domains route alike (largest difference {gap:.3f})")
    print(f"largest difference between the domains' expert shares: {100 * gap:.1f} points")

    shot = os.path.join(out_dir, "routing_report.png")
    env = dict(os.environ, SMOE_PAGE=page, SMOE_SCREENSHOT=shot)
    r = subprocess.run([node, os.path.join(SOURCE, "tests", "e2e", "server", "render_page.mjs")], env=env,
                       capture_output=True, text=True, timeout=300)
    if r.returncode == 77:
        skip(r.stdout.strip())
    c.check(r.returncode == 0, f"rendering failed: {r.stdout} {r.stderr}")
    drawn = json.loads(r.stdout.strip().splitlines()[-1])
    c.check(drawn["requests"] == [], f"the page fetched {drawn['requests']}")
    c.check(len(drawn["bars"]) == n_layers * n_exp * 2, f"{len(drawn['bars'])} bars")
    scale = None
    for b in drawn["bars"]:
        d = doms[b["domain"]]
        want = d["layers"][b["layer"]]["first_choice"][b["expert"]] / d["n_tokens"]
        c.check(abs(b["share"] - want) < 1e-6, f"bar {b}: {want}")
        if b["share"] > 0.02:
            s = b["height"] / b["share"]
            scale = scale or s
            c.check(abs(s - scale) < 0.02 * scale + 0.5, f"bar {b} not drawn to scale ({s} vs {scale})")
    c.check(len(drawn["cells"]) == n_layers * 2 * 2, f"{len(drawn['cells'])} Table 5 cells")
    for cell in drawn["cells"]:
        lay = doms[cell["domain"]]["layers"][cell["layer"]]
        want = lay["same_first" if cell["kind"] == "first" else "same_any"] / lay["pairs"]
        c.check(abs(cell["value"] - want) < 1e-6 and cell["text"] == f"{100 * want:.1f}%", f"cell {cell}: {want}")
    c.check(drawn["tokens"] == 2 * len(data["token_layers"]) * 120, f"{drawn['tokens']} coloured tokens")
    c.check(os.path.getsize(shot) > 10000, "screenshot missing or empty")
    print(f"screenshot: {shot}")

    empty = os.path.join(tmp, "empty.txt")
    open(empty, "w").close()
    e = smoe("routing", "-m", model, "-f", f"none={empty}", check=False)
    c.check(e.returncode == 2 and "is empty" in e.stderr, f"empty text: {e.returncode} {e.stderr}")

c.done()
