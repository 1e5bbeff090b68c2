"""A 3x3 kernel on a 4x4 input: stride 1, stride 2, padding 1 (seed 000). Run: python examples/stride_padding.py"""
from convlab.examples import stride_padding

stride_padding.run()
