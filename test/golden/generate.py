"""Runs every gen_*.py generator in this folder (npm run golden)."""
import glob
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
for path in sorted(glob.glob(os.path.join(HERE, "gen_*.py"))):
    if len(sys.argv) > 1 and not any(a in os.path.basename(path) for a in sys.argv[1:]):
        continue
    runpy.run_path(path, run_name="__main__")
