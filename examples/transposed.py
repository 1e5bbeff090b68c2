"""Transposed convolution: 3x3 -> 5x5 at s=2, p=1, k=3, and the zero-insertion recipe (seeds 000, 001).

Run: python examples/transposed.py
"""
from convlab.examples import transposed

transposed.run()
