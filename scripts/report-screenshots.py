#!/usr/bin/python3
"""Screenshots of a siamrec report's sections with headless Chromium (for docs/img and the README).

usage: report-screenshots.py REPORT.html OUTDIR [SECTION[:MAXHEIGHT] ...]

For each section (default: all seven; the metric table cut at 1,000 px) a copy of the report
showing only that section is rendered at 1280 px wide; the blank space under it is cropped, and
the image is cut at MAXHEIGHT px when given. Needs chromium and python3-pil (Debian).
"""
import os
import shutil
import subprocess
import sys
import tempfile

from PIL import Image, ImageChops

SECTIONS = ["protocol", "metrics:1000", "charts", "per-user", "training", "beyond", "embeddings"]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    report, outdir = sys.argv[1], sys.argv[2]
    sections = sys.argv[3:] or SECTIONS
    browser = shutil.which("chromium") or sys.exit("chromium is not installed")
    text = open(report, encoding="utf-8").read()
    os.makedirs(outdir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for arg in sections:
            s, _, cut = arg.partition(":")
            css = f"<style>header,section:not(#{s}){{display:none}} body{{margin-top:0}}</style></head>"
            page = os.path.join(tmp, f"{s}.html")
            with open(page, "w", encoding="utf-8") as f:
                f.write(text.replace("</head>", css, 1))
            shot = os.path.join(tmp, f"{s}.png")
            subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            "--no-first-run", f"--user-data-dir={os.path.join(tmp, 'profile')}",
                            "--window-size=1280,4000", f"--screenshot={shot}", "file://" + page],
                           check=True, capture_output=True, timeout=120)
            img = Image.open(shot).convert("RGB")
            bbox = ImageChops.difference(img, Image.new("RGB", img.size, (255, 255, 255))).getbbox()
            if bbox:
                img = img.crop((0, 0, img.size[0], min(img.size[1], bbox[3] + 16)))
            if cut:
                img = img.crop((0, 0, img.size[0], min(img.size[1], int(cut))))
            dest = os.path.join(outdir, f"report_{s.replace('-', '_')}.png")
            img.save(dest, optimize=True)
            print(dest, img.size)


if __name__ == "__main__":
    main()
