#!/usr/bin/env python3
# Copyright: vps-baseline contributors
# SPDX-License-Identifier: MIT
"""Build a drifted docroot: 60 directories x 50 files (3,000 files) with the modes contractors
leave behind (777 directories; 666, 644 and 755 files; a private 600 file), all root:root."""
import os
import sys

root = sys.argv[1]
os.makedirs(root, exist_ok=True)
file_modes = [0o666, 0o644, 0o755, 0o666, 0o600]
count = 0
for d in range(60):
    sub = os.path.join(root, f"section{d // 10}", f"page{d}")
    os.makedirs(sub, exist_ok=True)
    for f in range(50):
        path = os.path.join(sub, f"file{f}.html")
        with open(path, "w") as fh:
            fh.write(f"<p>page {d} file {f}</p>\n" * (f % 7 + 1))
        os.chmod(path, file_modes[(d + f) % len(file_modes)])
        count += 1
for dirpath, dirnames, _ in os.walk(root):
    for name in dirnames:
        os.chmod(os.path.join(dirpath, name), 0o777)
os.chmod(root, 0o777)
with open(os.path.join(root, ".drifted"), "w") as fh:
    fh.write(f"{count} files\n")
os.chmod(os.path.join(root, ".drifted"), 0o666)
print(f"{count} files")
