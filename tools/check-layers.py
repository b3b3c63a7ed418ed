#!/usr/bin/env python3
"""The module layering of src/, as docs/ARCHITECTURE.md states it, checked (prints TAP):

1. includes: a file of module M includes headers of M, of the modules the table in
   docs/ARCHITECTURE.md ("Modules and dependencies") lets M include, and no other module's
   <m>-private.h;
2. calls: the files of one module never call each other in a cycle (from the symbols the
   built objects define and use: `nm`), so each module reads top to bottom;
3. the library list in src/meson.build matches the table: no module links a module it may
   not include.

Usage: check-layers.py SOURCE_ROOT BUILD_DIR
"""
import collections
import glob
import os
import re
import subprocess
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
BUILD = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "build")
SRC = os.path.join(ROOT, "src")


def allowed_table():
    text = open(os.path.join(ROOT, "docs", "ARCHITECTURE.md")).read()
    m = re.search(r"<!-- BEGIN MODULE DEPENDENCIES.*?-->(.*?)<!-- END MODULE DEPENDENCIES -->",
                  text, re.S)
    if not m:
        raise SystemExit("Bail out! no module dependency table in docs/ARCHITECTURE.md")
    table = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or cells[0] in ("Module", "") or set(cells[0]) <= set("-"):
            continue
        table[cells[0]] = {c.strip() for c in cells[1].split(",") if c.strip()}
    return table


def module_of(path):
    rel = os.path.relpath(path, SRC)
    return rel.split(os.sep)[0] if os.sep in rel else "main"


def check_includes(table):
    problems = []
    modules = {d for d in os.listdir(SRC) if os.path.isdir(os.path.join(SRC, d))}
    for path in sorted(glob.glob(os.path.join(SRC, "**", "*.[ch]"), recursive=True)):
        if "/proto/" in path:
            continue
        mod = module_of(path)
        if mod not in table:
            problems.append(f"{os.path.relpath(path, ROOT)}: module '{mod}' is not in the table")
            continue
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m or "/" not in m.group(1):
                continue  # a header of the same directory
            other, header = m.group(1).split("/", 1)
            if other not in modules or other == mod:
                continue
            where = f"{os.path.relpath(path, ROOT)}:{n}"
            if other not in table[mod]:
                problems.append(f"{where}: {mod} may not include {other} ({m.group(1)})")
            elif header.endswith("-private.h"):
                problems.append(f"{where}: {m.group(1)} is private to {other}")
    return problems


def check_cycles():
    objs = glob.glob(os.path.join(BUILD, "src", "**", "*.o"), recursive=True)
    libs = collections.defaultdict(list)
    for o in objs:
        base = os.path.basename(o)[:-2]
        lib = os.path.basename(os.path.dirname(o)).split(".a.p")[0]
        if ".pb-c." in base or base.startswith("openapi-json"):
            continue
        libs[lib].append((base, o))
    if not libs:
        return [f"no objects under {BUILD}/src: build first"]
    problems = []
    for lib, files in sorted(libs.items()):
        if not lib.startswith("libhv-"):
            continue  # the executable's own objects
        defs, uses = {}, {}
        for base, o in files:
            out = subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout
            d, u = set(), set()
            for line in out.splitlines():
                p = line.split()
                if len(p) == 3 and p[1] in ("T", "D", "R", "B"):
                    d.add(p[2])
                elif len(p) == 2 and p[0] == "U":
                    u.add(p[1])
            defs[base], uses[base] = d, u
        owner = {s: f for f, d in defs.items() for s in d}
        graph = {f: {owner[s] for s in uses[f] if s in owner and owner[s] != f} for f in defs}
        # Tarjan's strongly connected components: any with two files or more is a cycle.
        index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

        def visit(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in sorted(graph[v]):
                if w not in index:
                    visit(w)
                    low[v] = min(low[v], low[w])
                elif w in on:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    comps.append(sorted(comp))

        for v in sorted(graph):
            if v not in index:
                visit(v)
        for comp in comps:
            calls = []
            for f in comp:
                for s in sorted(uses[f]):
                    if owner.get(s) in comp and owner[s] != f:
                        calls.append(f"{f} → {owner[s]} ({s})")
            problems.append(f"{lib}: call cycle among {', '.join(comp)}: " + "; ".join(calls))
    return problems


def check_meson(table):
    text = open(os.path.join(SRC, "meson.build")).read()
    for sub in glob.glob(os.path.join(SRC, "*", "meson.build")):
        text += open(sub).read()
    problems = []
    for m in re.finditer(r"(hv_\w+?) = static_library\('hv-(\w+)'.*?dependencies : \[([^\]]*)\]",
                         text, re.S):
        mod = m.group(2)
        deps = set(re.findall(r"\bhv_(\w+)_dep\b", m.group(3))) & set(table)
        for d in deps:
            if mod in table and d not in table[mod]:
                problems.append(f"src meson: hv-{mod} links hv_{d}_dep, which the table forbids")
    return problems


def main():
    table = allowed_table()
    checks = [("every include follows the module table of docs/ARCHITECTURE.md",
               lambda: check_includes(table)),
              ("no call cycle between the files of a module", check_cycles),
              ("the libraries in src/meson.build link only what the table allows",
               lambda: check_meson(table))]
    print(f"1..{len(checks)}")
    rc = 0
    for i, (name, fn) in enumerate(checks, 1):
        problems = fn()
        print(f"{'ok' if not problems else 'not ok'} {i} - {name}")
        for p in problems:
            print(f"# {p}")
        rc |= bool(problems)
    return rc


if __name__ == "__main__":
    sys.exit(main())
