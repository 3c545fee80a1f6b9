#!/usr/bin/env python3
"""Checks siamrec's includes against its layers (src/layers.txt).

Every `#include "folder/..."` in src/ must name a folder of the includer's own layer or of a layer
it uses (transitively). Also: every folder under src/ belongs to one layer, the public headers in
include/siamrec/ include nothing of src/ and no LibTorch header, and docs/architecture.md names
every layer. Exit 1 with one line per violation (file:line: what and why); the build enforces the
same rule (each layer's include path), this check says it in words and also covers headers no
target compiles.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"/]+)/[^"]+"')
SYSTEM_TORCH = re.compile(r'^\s*#\s*include\s*<(torch|ATen|c10)/')


def read_layers(path):
    layers, order = {}, []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cols = [c.strip() for c in line.rstrip("\n").split("|")]
            if len(cols) != 4:
                sys.exit(f"{path}:{n}: expected 4 columns separated by '|', got {len(cols)}")
            name, folders, uses, flags = cols[0], cols[1].split(), cols[2].split(), cols[3].split()
            for u in uses:
                if u not in layers:
                    sys.exit(f"{path}:{n}: layer '{name}' uses '{u}', which is not listed above it")
            layers[name] = {"folders": folders, "uses": uses, "flags": flags, "line": n}
            order.append(name)
    return layers, order


def closure(layers, name):
    seen, todo = set(), [name]
    while todo:
        l = todo.pop()
        if l in seen:
            continue
        seen.add(l)
        todo.extend(layers[l]["uses"])
    return seen


def main():
    layers, order = read_layers(os.path.join(ROOT, "src", "layers.txt"))
    folder_layer = {}
    for name in order:
        for f in layers[name]["folders"]:
            if f in folder_layer:
                print(f"src/layers.txt: folder '{f}' is in two layers ({folder_layer[f]}, {name})")
                return 1
            folder_layer[f] = name
    errors = []
    src = os.path.join(ROOT, "src")
    for d in sorted(os.listdir(src)):
        if os.path.isdir(os.path.join(src, d)) and d not in folder_layer:
            errors.append(f"src/{d}/: folder belongs to no layer of src/layers.txt")
    def lines(path):
        """(relative path, line number, include folder or None, LibTorch include?) for each line."""
        rel = os.path.relpath(path, ROOT)
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                yield rel, n, (m.group(1) if m else None), bool(SYSTEM_TORCH.match(line))

    checked = 0
    for d, layer in sorted(folder_layer.items()):
        allowed = closure(layers, layer)
        for dirpath, _, files in os.walk(os.path.join(src, d)):
            for fn in sorted(files):
                if not fn.endswith((".h", ".cc")):
                    continue
                checked += 1
                for rel, n, target, _ in lines(os.path.join(dirpath, fn)):
                    if target is None or target == "siamrec":  # siamrec/: the public API headers
                        continue
                    tl = folder_layer.get(target)
                    if tl is None:
                        errors.append(f"{rel}:{n}: includes '{target}/', a folder of no layer")
                    elif tl not in allowed:
                        errors.append(f"{rel}:{n}: layer '{layer}' includes a header of '{target}/' (layer "
                                      f"'{tl}'), which '{layer}' does not use (src/layers.txt)")
    pub = os.path.join(ROOT, "include", "siamrec")
    if os.path.isdir(pub):
        for fn in sorted(os.listdir(pub)):
            checked += 1
            for rel, n, target, torch in lines(os.path.join(pub, fn)):
                if target is not None and target != "siamrec":
                    errors.append(f"{rel}:{n}: a public header includes '{target}/' of src/ (pimpl it)")
                if torch:
                    errors.append(f"{rel}:{n}: a public header includes LibTorch")
    arch = os.path.join(ROOT, "docs", "architecture.md")
    if not os.path.exists(arch):
        errors.append("docs/architecture.md is missing")
    else:
        text = open(arch, encoding="utf-8").read()
        for name in order:
            if f"`{name}`" not in text:
                errors.append(f"docs/architecture.md: layer '{name}' is not described (write `{name}`)")
    for e in errors:
        print(e)
    print(f"check_layers: {checked} files, {len(order)} layers, {len(errors)} violations")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
