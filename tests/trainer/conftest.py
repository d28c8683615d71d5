import os
import sys

# tests/trainer/tiny.py is imported as a plain module by the tests in this folder.
sys.path.insert(0, os.path.dirname(__file__))
