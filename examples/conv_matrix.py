"""The convolution matrix C (4x16) and its transpose (seed 001). Run: python examples/conv_matrix.py"""
from convlab.examples import conv_matrix

conv_matrix.run()
